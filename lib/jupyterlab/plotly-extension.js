// A renderer for plotly figures (`application/vnd.plotly.v1+json`, sent by sm.plot.show) so that
// figures draw in every case: trusted or not (the figure is data, not script: plotly draws it
// without running code from the notebook, which is why jupyterlab-plotly also marks its renderer
// safe), and after a browser reload while the kernel runs (plotly.js ships with this front end
// instead of riding in an earlier output). plotly.js (plotly.js-dist-min, the version the library
// pins) is a separate chunk, fetched the first time a figure is drawn.
import { Widget } from '@lumino/widgets';

const MIME = 'application/vnd.plotly.v1+json';

let plotly = null;
function loadPlotly() {
  plotly ??= import(/* webpackChunkName: "plotly" */ 'plotly.js-dist-min').then((m) => m.default ?? m);
  return plotly;
}

class PlotlyFigure extends Widget {
  constructor(options) {
    super();
    this.mimeType = options.mimeType;
    this.addClass('softmoe-PlotlyFigure');
    // As JupyterLab's own renderers do: lets CSS and tests find outputs by type.
    this.node.dataset.mimeType = options.mimeType;
    this.plotly = null;
  }

  async renderModel(model) {
    const figure = model.data[this.mimeType];
    if (figure == null || !Array.isArray(figure.data)) {
      this.node.textContent = 'not a plotly figure: expected {data: [...], layout: {...}}';
      return;
    }
    this.plotly = await loadPlotly();
    const layout = { ...(figure.layout ?? {}) };
    const config = { responsive: true, displaylogo: false, ...(figure.config ?? {}) };
    // Without a height plotly measures the (still empty) output node; use the figure's own or
    // plotly's default.
    this.node.style.height = `${typeof layout.height === 'number' ? layout.height : 450}px`;
    if (typeof layout.width === 'number') this.node.style.width = `${layout.width}px`;
    await this.plotly.react(this.node, figure.data, layout, config);
  }

  onAfterShow() {
    this.resize();
  }

  onResize() {
    this.resize();
  }

  resize() {
    if (this.plotly && this.node.querySelector('.main-svg')) this.plotly.Plots.resize(this.node);
  }

  dispose() {
    if (this.plotly && !this.isDisposed) this.plotly.purge(this.node);
    super.dispose();
  }
}

/** A mime extension module (IRenderMime.IExtension): ranked before text/html (rank 50). */
export default {
  id: 'soft-moe-workbook:plotly',
  rendererFactory: {
    safe: true,
    mimeTypes: [MIME],
    createRenderer: (options) => new PlotlyFigure(options),
  },
  rank: 0,
  dataType: 'json',
};
