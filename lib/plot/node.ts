/**
 * Plots and notebook helpers (Node): figure builders, show(), standalone HTML, progress, quick mode.
 *
 * @packageDocumentation
 */
export * from './index.js';
export * from './html.js';
export * from './notebook.js';
export * from './progress.js';
export * from './show.js';
