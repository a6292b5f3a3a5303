/**
 * `returnRouting`: the dispatch and combine weights of a ViT's Soft MoE blocks, for looking
 * inside a trained model (the paper's Fig. 10; notebook 06). The expected weights are computed
 * here with plain loops from the block's input and its Φ and scale (paper eqs. 1 and 3, §2.3
 * normalisation as vmoe `normalize`: v·rsqrt(Σv² + 1e-6)), not with the library's softMoE.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { forEachBackend } from '../helpers/golden.js';
import type { SoftMoEBlock } from '../../lib/vit/mlp.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig } from './helpers.js';

function images(b: number, side = 8): tf.Tensor4D {
  return tf.tidy(() => tf.sin(tf.range(0, b * side * side, 1).mul(0.37)).reshape([b, side, side, 1]) as tf.Tensor4D);
}

function close(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-4 + 1e-3 * Math.abs(expected);
}

/** Plain-loop dispatch and combine [b][t][slot] from the MoE input h [b, m, d] and Φ [d, S]. */
function expectedWeights(
  h: number[][][],
  phi: number[][],
  scale: number,
): { dispatch: number[][][]; combine: number[][][] } {
  const slots = phi[0]!.length;
  const d = phi.length;
  const phiNorm = Array.from(
    { length: slots },
    (_, s) => 1 / Math.sqrt(phi.reduce((a, row) => a + row[s]! ** 2, 0) + 1e-6),
  );
  const dispatch: number[][][] = [];
  const combine: number[][][] = [];
  for (const tokens of h) {
    const logits = tokens.map((t) => {
      const tNorm = 1 / Math.sqrt(t.reduce((a, v) => a + v * v, 0) + 1e-6);
      return Array.from({ length: slots }, (_, s) => {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += t[k]! * tNorm * phi[k]![s]! * phiNorm[s]! * scale;
        return dot;
      });
    });
    // Eq. (1): for each slot, a softmax over the tokens; eq. (3): for each token, over the slots.
    const dispatchSeq = logits.map((row) => row.map(() => 0));
    for (let s = 0; s < slots; s++) {
      const z = logits.reduce((a, row) => a + Math.exp(row[s]!), 0);
      logits.forEach((row, t) => (dispatchSeq[t]![s] = Math.exp(row[s]!) / z));
    }
    dispatch.push(dispatchSeq);
    combine.push(
      logits.map((row) => {
        const z = row.reduce((a, v) => a + Math.exp(v), 0);
        return row.map((v) => Math.exp(v) / z);
      }),
    );
  }
  return { dispatch, combine };
}

forEachBackend(() => {
  describe('vit: returnRouting (dispatch and combine weights of the Soft MoE blocks)', function () {
    // 4 tokens, 2 experts × 2 slots in block 1 (handConfig: MoE in the last block only).
    const config = handConfig('soft', { moe: { numExperts: 2, slotsPerExpert: 2 } });

    it('equal the weights computed by plain loops from the block input, Φ and scale', async function () {
      const model = new ViT(config);
      const block = model.blocks[1]!;
      const layer = (block.mlp as SoftMoEBlock).layer;
      // A scale away from its initial 1 makes the softmaxes far from uniform (a stronger test).
      layer.variables.scale!.assign(tf.scalar(4));
      const x = images(3);
      const out = model.apply(x, { returnRouting: true });
      expect(Object.keys(out.routing!)).to.deep.equal(['1']);
      const { dispatch, combine } = out.routing![1]!;
      expect(dispatch.shape).to.deep.equal([3, 4, 2, 2]);
      expect(combine.shape).to.deep.equal([3, 4, 2, 2]);

      // The MoE input of block 1: LN2(x' ), x' = x + MSA(LN1(x)), x = block 0 of the embedded patches.
      const h = tf.tidy(() => {
        const x1 = model.blocks[0]!.apply(model.patchEmbed.apply(x)).y;
        const afterAttention = tf.add(x1, block.attention.apply(block.norm1.apply(x1) as tf.Tensor3D).y);
        return block.norm2.apply(afterAttention);
      });
      const want = expectedWeights(
        (await h.array()) as number[][][],
        (await layer.variables.phi!.reshape([8, 4]).array()) as number[][],
        4,
      );
      const gotDispatch = ((await dispatch.reshape([3, 4, 4]).array()) as number[][][]).flat(2);
      const gotCombine = ((await combine.reshape([3, 4, 4]).array()) as number[][][]).flat(2);
      want.dispatch
        .flat(2)
        .forEach((v, i) =>
          expect(close(gotDispatch[i]!, v), `dispatch #${i}: ${gotDispatch[i]} vs ${v}`).to.equal(true),
        );
      want.combine
        .flat(2)
        .forEach((v, i) => expect(close(gotCombine[i]!, v), `combine #${i}: ${gotCombine[i]} vs ${v}`).to.equal(true));
      // Far from uniform (1/4 over tokens, 1/4 over slots), so the comparison means something.
      expect(Math.max(...gotDispatch)).to.be.greaterThan(0.4);

      // The same forward: logits with and without returnRouting are identical.
      const plain = model.apply(x);
      expect(Array.from(await plain.logits.data())).to.deep.equal(Array.from(await out.logits.data()));
      tf.dispose([x, h, out.logits, out.auxLoss, dispatch, combine, plain.logits, plain.auxLoss]);
      model.dispose();
    });

    it('is absent without the option, and empty for models without Soft MoE blocks', function () {
      const x = images(2);
      const soft = new ViT(config);
      const out = soft.apply(x);
      expect(out.routing).to.equal(undefined);
      tf.dispose([out.logits, out.auxLoss]);
      soft.dispose();
      for (const kind of ['dense', 'tokens-choice', 'experts-choice'] as const) {
        const model = new ViT(handConfig(kind));
        const r = model.apply(x, { returnRouting: true });
        expect(r.routing, kind).to.deep.equal({});
        tf.dispose([r.logits, r.auxLoss, ...Object.values(r.metrics)]);
        model.dispose();
      }
      x.dispose();
    });

    it('Forward: no memory leak with returnRouting', function () {
      const model = new ViT(config);
      const x = images(2);
      const release = (o: ReturnType<ViT['apply']>) =>
        tf.dispose([o.logits, o.auxLoss, ...Object.values(o.routing ?? {}).flatMap((r) => [r.dispatch, r.combine])]);
      release(model.apply(x, { returnRouting: true }));
      const count = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) release(model.apply(x, { returnRouting: true }));
      expect(tf.memory().numTensors).to.equal(count);
      x.dispose();
      model.dispose();
    });
  });
});
