// Browser-safe training parts; checkpoint files and results files: ./node.ts.
export * from './schedule.js';
export * from './adam.js';
export * from './loss.js';
export * from './trainer.js';
