// Builds the front end (index.js) into build/, with each extension's settings schemas and
// themes copied next to it by @jupyterlab/builder (Build.ensureAssets), as JupyterLab's
// examples/app does. Development mode without source maps: minifying 20 MB takes minutes on a
// small machine and gains little for a local app.
const path = require('node:path');
const webpack = require('webpack');
const { Build } = require('@jupyterlab/builder');
const svgToDataUri = require('mini-svg-data-uri');
const pkg = require('./package.json');

const output = path.join(__dirname, 'build');

const assets = Build.ensureAssets({
  packageNames: [...pkg.jupyterlab.extensions, ...pkg.jupyterlab.mimeExtensions],
  output,
});

const svgFromCss = { test: /\.svg(\?v=\d+\.\d+\.\d+)?$/, issuer: /\.css$/, type: 'asset/inline', generator: { dataUrl: (svg) => svgToDataUri(svg.toString()) } };
const svgFromJs = { test: /\.svg(\?v=\d+\.\d+\.\d+)?$/, issuer: /\.js$/, type: 'asset/source' };

module.exports = [
  {
    entry: './index.js',
    output: { path: output, filename: 'bundle.js', chunkFilename: '[name].[contenthash].js' },
    mode: 'development',
    devtool: false,
    bail: true,
    performance: { hints: false },
    module: {
      // plotly.js-dist-min is one prebuilt UMD file: nothing in it to resolve.
      noParse: /plotly\.js-dist-min[\\/]plotly\.min\.js$/,
      rules: [
        { test: /\.css$/, use: ['style-loader', 'css-loader'] },
        { test: /\.html$/, type: 'asset/resource' },
        { test: /\.md$/, type: 'asset/source' },
        { test: /\.(jpg|png|gif)$/, type: 'asset/resource' },
        { test: /\.js\.map$/, type: 'asset/resource' },
        { test: /\.(woff2?|ttf)(\?v=\d+\.\d+\.\d+)?$/, type: 'asset' },
        { test: /\.eot(\?v=\d+\.\d+\.\d+)?$/, type: 'asset/resource' },
        svgFromCss,
        svgFromJs,
      ],
    },
    plugins: [
      // Some packages call process.cwd() (path polyfills); give them a browser stand-in.
      new webpack.DefinePlugin({ process: { cwd: () => '/', env: {} } }),
    ],
  },
  ...assets,
];
