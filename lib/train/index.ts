export * from './schedule.js';
export * from './adam.js';
export * from './loss.js';
export * from './checkpoint.js';
export * from './trainer.js';
export * from './results.js';
export * from './results-summary.js';
