/** Plots (browser-safe): plotly figure builders. show(), HTML files, progress, quick mode: ./node.ts. */
export * from './figure.js';
