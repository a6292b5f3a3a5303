/**
 * Tokens Choice and Experts Choice against the reference vectors (test/fixtures/golden, float64
 * PyTorch, see their README): outputs, gates, every routing decision, drop fractions and the
 * gradients of loss = sum(y·r) for x, wg, w1, b1, w2, b2, within 1e-4 + 1e-3·|reference|
 * (decisions exactly), on every test backend and webgpu (test/helpers/golden-run.ts).
 */
import { forEachBackend, goldenTests } from '../helpers/golden.js';

describe('sparse routers against the reference vectors', function () {
  forEachBackend(
    () => {
      describe('tokensChoice: y, gates, expertIndex, combineWeight, bufferIndex, kept, tokenKept, expertLoad, drop fractions, capacity, gradients', function () {
        goldenTests('tokens_choice');
      });
      describe('expertsChoice: y, gates, selectedIndexSorted, tokenExpertMask, numExpertsPerToken, tokenKept, expertLoad = C, drop fraction, capacity, gradients', function () {
        goldenTests('experts_choice');
      });
    },
    { webgpu: true },
  );
});
