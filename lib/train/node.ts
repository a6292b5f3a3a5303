// Node-only training parts: checkpoint files, results files (with git and machine info).
export * from './checkpoint.js';
export * from './results.js';
export * from './results-summary.js';
