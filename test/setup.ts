// Mocha root hooks: initialise the backend once ($SOFTMOE_BACKEND, else the library's default
// order) before any test. Tests that must run on several backends switch with `forEachBackend`.
import { initBackend } from '../lib/backend.js';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60000);
    await initBackend();
  },
};
