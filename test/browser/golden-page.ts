/**
 * Browser entry of the golden test (test/browser/golden.e2e.ts bundles it with esbuild for the
 * browser platform, which fails on any `node:` import on this path): the library's backend
 * choice, Soft MoE, the routers and the ViT, run in the page on a backend chosen by the test.
 */
import * as tf from '@tensorflow/tfjs';
import { backendInfo, describeBackend, initBackend } from '../../lib/backend.js';
import { ViT } from '../../lib/vit/vit.js';
import { runGolden, uncovered, type GoldenCase, type GoldenComparison } from '../helpers/golden-run.js';
import { handConfig } from '../vit/helpers.js';

export interface PageResult {
  backend: string;
  description: string;
  adapter: unknown;
  cases: Array<{ name: string; results: GoldenComparison[]; uncovered: string[] }>;
  vitLogits: number[];
  tensorsLeaked: number;
}

async function run(cases: GoldenCase[], backend: string): Promise<PageResult> {
  await initBackend(backend);
  const start = tf.memory().numTensors;
  const out: PageResult['cases'] = [];
  for (const c of cases) {
    const results = await runGolden(c);
    out.push({ name: c.name, results, uncovered: uncovered(c, results) });
  }
  // The ViT runs too (a Soft MoE model with a uniform head: non-zero logits).
  const model = new ViT(handConfig('soft', { headInit: 'uniform' }));
  const logits = tf.tidy(() => model.apply(tf.ones([2, 8, 8, 1]) as tf.Tensor4D).logits);
  const vitLogits = Array.from(await logits.data());
  logits.dispose();
  model.dispose();
  const info = backendInfo();
  return {
    backend: info.name,
    description: describeBackend(info),
    adapter: info.webgpu,
    cases: out,
    vitLogits,
    tensorsLeaked: tf.memory().numTensors - start,
  };
}

(globalThis as { softmoeGolden?: typeof run }).softmoeGolden = run;
