/**
 * soft-moe-workbook/node: everything of the package root (./index.ts) plus the parts that need
 * Node: data files on disk, checkpoint and results files (git, machine info), and the notebook
 * helpers of `plot` (show, HTML files, progress, quick mode). Notebooks import this entry.
 */
export * from './index.js';
export * as plot from './plot/node.js';
export * from './data/node.js';
export * from './train/node.js';
