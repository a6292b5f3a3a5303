/**
 * Forward FLOPs per image (a multiply-add = 2 FLOPs, matrix products only; lib/vit/cost.ts),
 * against a hand count of handConfig and against the products the backend actually ran
 * (tf.profile's kernel list).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { modelCost } from '../../lib/vit/cost.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig, KINDS } from './helpers.js';

// Hand count for handConfig: m = 4 tokens, d = 8, P²C = 16, MLP h = 16, 2 heads, 3 classes, n = 2.
//   patch embedding  [4, 16]·[16, 8]                          2·4·16·8            = 1024
//   attention, per block: q, k, v, out  4 × 2·4·8·8 = 2048; q·kᵀ and A·v over the heads
//                    2 × 2·4·4·8 = 512                        2 blocks × 2560     = 5120
//   dense MLP [4, 8]·[8, 16] and [4, 16]·[16, 8]              2 × 2·4·8·16        = 2048 (block 0)
//   head: pooling [1, 4]·[4, 8] = 64, [1, 8]·[8, 3] = 48                          = 112
//   common to every kind: 1024 + 5120 + 2048 + 112                                = 8304
// Block 1's MLP slot:
//   dense          2048                                                    → total 10352
//   soft (S = n·p = 2 slots): logits [4, 8]·[8, 2] = 128; Dᵀ·X [2, 4]·[4, 8] = 128 and
//                  C·Ỹ [4, 2]·[2, 8] = 128; 2 slots × (2·8·16 + 2·16·8 = 512) = 1024
//                  = 1408                                                  → total 9712
//   tokens choice (C = ceil(4·1·1/2) = 2) and experts choice (C = round(4·1/2) = 2):
//                  router [4, 8]·[8, 2] = 128; one-hot dispatch [4, 4]·[4, 8] = 256 and
//                  combine [4, 4]·[4, 8] = 256; n·C = 4 buffer slots × 512 = 2048
//                  = 2688                                                  → total 10992
const HAND_FLOPS = { dense: 10352, soft: 9712, 'tokens-choice': 10992, 'experts-choice': 10992 };

/** FLOPs of every matrix-product kernel tf.profile saw: 2 · output size · inner dimension. */
async function profiledProductFlops(fn: () => tf.Tensor): Promise<number> {
  const info = await tf.profile(fn);
  let flops = 0;
  for (const k of info.kernels) {
    if (!/MatMul|Gemm/i.test(k.name)) continue;
    const a = k.inputShapes[0];
    const out = k.outputShapes[0];
    flops += 2 * out.reduce((s, v) => s * v, 1) * a[a.length - 1];
  }
  return flops;
}

describe('vit/cost: parameters and forward FLOPs per image', function () {
  for (const kind of KINDS) {
    it(`${kind}: the hand count`, function () {
      const cost = modelCost(handConfig(kind));
      expect(cost.flopsPerImage.total).to.equal(HAND_FLOPS[kind]);
      const f = cost.flopsPerImage;
      expect(f.patchEmbed + f.attention + f.mlp + f.router + f.dispatchCombine + f.head).to.equal(f.total);
      expect(cost.blocks.map((b) => b.kind)).to.deep.equal(['dense', kind]);
    });

    it(`${kind}: equals the products the backend runs for a batch of 2, per image`, async function () {
      const model = new ViT(handConfig(kind));
      const x = tf.zeros([2, 8, 8, 1]) as tf.Tensor4D;
      const profiled = await profiledProductFlops(() => model.apply(x).logits);
      // (The sparse routers' expert load, a drop-fraction metric, is a row sum (sumRows), not a
      // product, so every product profiled here is model compute.)
      expect(profiled / 2).to.equal(HAND_FLOPS[kind]);
      x.dispose();
      model.dispose();
    });
  }

  it('Soft MoE at a fixed number of slots costs the same FLOPs for any number of experts (§2.2)', function () {
    const a = modelCost({ kind: 'soft', moe: { numExperts: 16, slotsPerExpert: 4 } });
    const b = modelCost({ kind: 'soft', moe: { numExperts: 64, slotsPerExpert: 1 } });
    expect(a.flopsPerImage.total).to.equal(b.flopsPerImage.total);
    expect(b.parameters).to.be.greaterThan(a.parameters);
  });
});
