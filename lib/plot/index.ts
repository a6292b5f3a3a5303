/** Plots and notebook helpers: figure builders, show(), standalone HTML, progress, quick mode. */
export * from './figure.js';
export * from './html.js';
export * from './notebook.js';
export * from './progress.js';
export * from './show.js';
export * from './diagnostics.js';
