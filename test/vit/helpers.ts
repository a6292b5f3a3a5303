/**
 * A small ViT configuration whose parameter and FLOP counts are written out by hand in
 * test/vit/cost.test.ts: 8×8×1 images, patch 4 → m = 4 tokens, d = 8, 2 blocks, 2 heads,
 * MLP 16, 3 classes, 2 experts (1 slot each), MoE in the last block only (the default last half).
 */
import type { BlockKind, ViTConfig } from '../../lib/vit/config.js';

export const KINDS: BlockKind[] = ['dense', 'soft', 'tokens-choice', 'experts-choice'];

export function handConfig(kind: BlockKind, extra: Partial<ViTConfig> = {}): ViTConfig {
  return {
    imageSize: 8,
    channels: 1,
    patchSize: 4,
    dim: 8,
    depth: 2,
    numHeads: 2,
    mlpDim: 16,
    numClasses: 3,
    kind,
    moe: { numExperts: 2 },
    ...extra,
  };
}
