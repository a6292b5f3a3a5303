/**
 * Diagnostics of every Soft MoE block of a ViT on a probe batch (lib/moe/diagnostics.ts): the
 * routing weights of that batch, Φ, `scale` and the experts of each block. The trainer records
 * them at each evaluation (lib/train/trainer.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { softMoEDiagnostics, type SoftMoEDiagnostics } from '../moe/diagnostics.js';
import { SoftMoEBlock } from './mlp.js';
import type { ViT } from './vit.js';

/** Diagnostics by block, keyed `block{l}` (l = block index); empty without Soft MoE blocks. */
export type BlockDiagnostics = Record<string, SoftMoEDiagnostics>;

/** Run `images` [b, H, W, C] through the model (no noise, no update) and measure each Soft MoE block. */
export async function softMoEBlockDiagnostics(model: ViT, images: tf.Tensor4D): Promise<BlockDiagnostics> {
  const soft = model.blocks.map((b, i) => [i, b.mlp] as const).filter(([, mlp]) => mlp instanceof SoftMoEBlock);
  if (soft.length === 0) return {};
  const out = model.apply(images, { returnRouting: true });
  const result: BlockDiagnostics = {};
  try {
    for (const [i, mlp] of soft) {
      const routing = out.routing?.[i];
      if (routing == null) throw new Error(`block ${i} returned no routing weights`);
      const layer = (mlp as SoftMoEBlock).layer;
      const params = layer.params;
      const identity = model.config.moe.softOptions.experts === 'identity';
      result[`block${i}`] = await softMoEDiagnostics({
        dispatch: routing.dispatch,
        combine: routing.combine,
        phi: params.phi,
        scale: params.scale,
        ...(identity ? {} : { experts: { w1: params.w1, b1: params.b1, w2: params.w2, b2: params.b2 } }),
      });
    }
  } finally {
    tf.dispose([
      out.logits,
      out.auxLoss,
      ...Object.values(out.metrics),
      ...Object.values(out.routing ?? {}).flatMap((r) => [r.dispatch, r.combine]),
    ]);
  }
  return result;
}
