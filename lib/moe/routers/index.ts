/** The sparse routers compared with Soft MoE (paper §2.1, Appendix B). Re-exports only. */
export * from './tokens-choice.js';
export * from './experts-choice.js';
