/**
 * Plots (browser-safe): plotly figure builders returning plain `{data, layout}` figures. Showing
 * them in a notebook (`show`), HTML files, progress and quick mode are in the Node entry's `plot`
 * ('soft-moe-workbook/node', lib/plot/node.ts).
 *
 * @packageDocumentation
 */
export * from './figure.js';
export * from './diagnostics.js';
