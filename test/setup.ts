// Mocha root hooks: initialise the backend once ($SOFTMOE_BACKEND, else the library's default
// order without webgpu, whose reads must be asynchronous) before any test. Tests that must run on
// several backends switch with `forEachBackend`.
import { initDefaultBackend } from './helpers/golden.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60000);
    await initDefaultBackend();
  },
};
