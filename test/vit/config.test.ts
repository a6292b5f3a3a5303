import { expect } from 'chai';
import { defaultMoELayers, resolveViTConfig, SIZE_PRESETS } from '../../lib/vit/config.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig, KINDS } from './helpers.js';

describe('vit/config: defaults and validation', function () {
  it('fills the documented defaults (28×28, patch 4 → 49 tokens, d 64, 4 blocks, MLP 4·d, dense)', function () {
    const c = resolveViTConfig({});
    expect([c.imageSize, c.channels, c.patchSize, c.numClasses, c.dim, c.depth, c.numHeads, c.mlpDim]).to.deep.equal([
      28, 1, 4, 10, 64, 4, 4, 256,
    ]);
    expect(c.numTokens).to.equal(49); // (28 / 4)² = 7² = 49
    expect(c.kind).to.equal('dense');
    expect(c.blocks).to.deep.equal(['dense', 'dense', 'dense', 'dense']);
    expect(c.moe.layers).to.deep.equal([]);
    expect(c.moe.numExperts).to.equal(16);
    expect(c.moe.slotsPerExpert).to.equal(1);
    expect(c.moe.k).to.equal(1);
    expect(c.moe.capacityFactor).to.equal(1);
    expect(c.moe.auxLossWeight).to.equal(0.005);
    expect(c.moe.noiseStd).to.equal(1);
    expect(c.moe.expertHidden).to.equal(256);
  });

  it('puts the MoE in the last half of the blocks by default (vmoe last_n = 6 of 12)', function () {
    expect(defaultMoELayers(12)).to.deep.equal([6, 7, 8, 9, 10, 11]);
    expect(defaultMoELayers(4)).to.deep.equal([2, 3]);
    expect(defaultMoELayers(5)).to.deep.equal([3, 4]);
    expect(defaultMoELayers(1)).to.deep.equal([0]);
    const c = resolveViTConfig({ kind: 'soft', depth: 6 });
    expect(c.blocks).to.deep.equal(['dense', 'dense', 'dense', 'soft', 'soft', 'soft']);
    expect(c.moe.layers).to.deep.equal([3, 4, 5]);
  });

  it('honours explicit MoE layers and per-block kinds', function () {
    expect(resolveViTConfig({ kind: 'tokens-choice', depth: 4, moe: { layers: [1, 3] } }).blocks).to.deep.equal([
      'dense',
      'tokens-choice',
      'dense',
      'tokens-choice',
    ]);
    const mixed = resolveViTConfig({ depth: 3, blocks: ['soft', 'dense', 'experts-choice'] });
    expect(mixed.blocks).to.deep.equal(['soft', 'dense', 'experts-choice']);
    expect(mixed.moe.layers).to.deep.equal([0, 2]);
  });

  it('a capacity factor without slots sizes Soft MoE by it', function () {
    expect(resolveViTConfig({ kind: 'soft', moe: { capacityFactor: 2 } }).moe.slotsPerExpert).to.equal(null);
    expect(
      resolveViTConfig({ kind: 'soft', moe: { capacityFactor: 2, slotsPerExpert: 3 } }).moe.slotsPerExpert,
    ).to.equal(3);
  });

  it('presets are valid configurations', function () {
    for (const [name, preset] of Object.entries(SIZE_PRESETS)) {
      expect(() => resolveViTConfig({ ...preset, kind: 'soft' }), name).not.to.throw();
    }
  });

  it('rejects bad values with messages naming them', function () {
    expect(() => resolveViTConfig({ patchSize: 5 })).to.throw(/patchSize 5 must divide imageSize 28/);
    expect(() => resolveViTConfig({ dim: 30, numHeads: 4 })).to.throw(/numHeads 4 must divide dim 30/);
    expect(() => resolveViTConfig({ kind: 'sparse' as never })).to.throw(/kind must be one of .* got "sparse"/);
    expect(() => resolveViTConfig({ moe: { numExperts: 2, k: 3 } })).to.throw(
      /moe\.k = 3 must be ≤ moe\.numExperts = 2/,
    );
    expect(() => resolveViTConfig({ depth: 2, moe: { layers: [2] } })).to.throw(/block indices in \[0, 1\], got 2/);
    expect(() => resolveViTConfig({ depth: 2, blocks: ['dense'] })).to.throw(/one kind per block \(2\), got 1/);
    expect(() => resolveViTConfig({ dim: 0 })).to.throw(/dim must be an integer ≥ 1, got 0/);
    expect(() => resolveViTConfig({ moe: { capacityFactor: -1 } })).to.throw(
      /capacityFactor must be a finite number > 0, got -1/,
    );
    expect(() => resolveViTConfig({ moe: { auxLossWeight: -1 } })).to.throw(
      /auxLossWeight must be a finite number ≥ 0, got -1/,
    );
  });
});

describe('vit/config: a resolved config builds the same model', () => {
  for (const kind of KINDS) {
    it(`${kind}: new ViT(model.config) (as stored in checkpoints and results files) has the same parameters`, () => {
      const a = new ViT(handConfig(kind, { seed: 3 }));
      const stored = JSON.parse(JSON.stringify(a.config)); // what a checkpoint or results file holds
      const b = new ViT(stored);
      try {
        expect(b.config).to.deep.equal(a.config);
        for (const [name, v] of Object.entries(a.variables)) {
          expect(Array.from(b.variables[name].dataSync()), name).to.deep.equal(Array.from(v.dataSync()));
        }
      } finally {
        a.dispose();
        b.dispose();
      }
    });
  }
  it('a numTokens that disagrees with the image and patch sizes is refused, naming both', () => {
    expect(() => resolveViTConfig({ ...handConfig('dense'), numTokens: 5 })).to.throw(
      /numTokens 5 disagrees with imageSize 8 \/ patchSize 4/,
    );
  });
});
