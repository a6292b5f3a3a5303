// The workbook's JupyterLab front end: JupyterLab's own plugins (pinned in package.json, the
// 4.5 line) plus a plotly renderer of our own (plotly-extension.js). Modelled on JupyterLab's
// examples/app (tag v4.5.10); built by webpack.config.js into build/, served by main.py.
import { JupyterLab } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';

// Chunks and assets load from the server's static URL, which is known only at run time; this
// must run before any style or chunk is requested.
// eslint-disable-next-line no-undef
__webpack_public_path__ = `${PageConfig.getOption('fullStaticUrl')}/`;

const styles = import('./build/style.js');

/** Plugins we leave out, by id (substring): */
const SKIPPED = [
  // asks "Would you like to get notified about official Jupyter news?" and polls the network;
  ':announcements',
  // needs the jupyter-lsp server extension, which Debian's server does not have.
  ':language-server',
];

/** The plugins of one extension package (its default export: one plugin or a list). */
async function pluginsOf(load) {
  const mod = await load;
  const exported = Object.prototype.hasOwnProperty.call(mod, '__esModule') || 'default' in mod ? mod.default : mod;
  const list = Array.isArray(exported) ? exported : [exported];
  return list.filter((plugin) => !SKIPPED.some((skip) => plugin.id.includes(skip)));
}

// One import per entry of package.json's jupyterlab.extensions (webpack needs literal names).
const extensionModules = [
  import('@jupyterlab/application-extension'),
  import('@jupyterlab/apputils-extension'),
  import('@jupyterlab/celltags-extension'),
  import('@jupyterlab/codemirror-extension'),
  import('@jupyterlab/completer-extension'),
  import('@jupyterlab/console-extension'),
  import('@jupyterlab/docmanager-extension'),
  import('@jupyterlab/documentsearch-extension'),
  import('@jupyterlab/filebrowser-extension'),
  import('@jupyterlab/fileeditor-extension'),
  import('@jupyterlab/help-extension'),
  import('@jupyterlab/imageviewer-extension'),
  import('@jupyterlab/inspector-extension'),
  import('@jupyterlab/launcher-extension'),
  import('@jupyterlab/mainmenu-extension'),
  import('@jupyterlab/markdownviewer-extension'),
  import('@jupyterlab/markedparser-extension'),
  import('@jupyterlab/mathjax-extension'),
  import('@jupyterlab/metadataform-extension'),
  import('@jupyterlab/notebook-extension'),
  import('@jupyterlab/rendermime-extension'),
  import('@jupyterlab/running-extension'),
  import('@jupyterlab/settingeditor-extension'),
  import('@jupyterlab/shortcuts-extension'),
  import('@jupyterlab/statusbar-extension'),
  import('@jupyterlab/theme-dark-extension'),
  import('@jupyterlab/theme-light-extension'),
  import('@jupyterlab/toc-extension'),
  import('@jupyterlab/tooltip-extension'),
  import('@jupyterlab/translation-extension'),
  import('@jupyterlab/ui-components-extension'),
];

const mimeModules = [import('@jupyterlab/json-extension'), import('./plotly-extension.js')];

window.addEventListener('load', async () => {
  await styles;
  const lab = new JupyterLab({ mimeExtensions: await Promise.all(mimeModules) });
  const plugins = await Promise.all(extensionModules.map(pluginsOf));
  lab.registerPlugins(plugins.flat());
  await lab.start();
  await lab.restored;
  // The browser test waits for this flag before it drives the page.
  document.body.dataset.softmoeLabReady = 'true';
});
