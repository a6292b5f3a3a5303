/**
 * The accelerator plug-in mechanism (lib/ops/accelerators.ts): an op calls a plug-in's
 * implementation when one is active, its portable version when none is or the plug-in declines;
 * and the wasm plug-in is contained — only the ops' dispatch and the ops' index reach into
 * lib/ops/wasm/, and no library code outside lib/ops asks for fast kernels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { fastOp, registerAccelerator, type FastOps } from '../../lib/ops/accelerators.js';
import { gelu } from '../../lib/ops/nn.js';
import { LIB, importSpecifiers, resolveLocal, stripComments, tsFiles } from '../helpers/imports.js';

const PLUGIN_DIR = path.join(LIB, 'ops', 'wasm');
/** Files outside the plug-in's folder allowed to import it: the dispatch, and the ops' index (its switches). */
const MAY_IMPORT_PLUGIN = [path.join(LIB, 'ops', 'accelerators.ts'), path.join(LIB, 'ops', 'index.ts')];
/** What lib/ops/index.ts may re-export from the plug-in: its documented switches and status. */
const PLUGIN_PUBLIC = [
  'disposeFastWasm',
  'FAST_WASM_ENV',
  'FAST_WASM_SHARE_CLONES_ENV',
  'fastWasmStatus',
  'PINNED_TFJS_VERSION',
  'setFastWasmEnabled',
  'setFastWasmSharedClones',
];

const inside = (file: string, dir: string) => file.startsWith(dir + path.sep);

/** Ways a set of lib/ files breaks the containment of the plug-in, one line each. */
export function containmentViolations(
  files: readonly string[],
  read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'),
): string[] {
  const bad: string[] = [];
  for (const file of files) {
    if (inside(file, PLUGIN_DIR)) continue;
    const rel = path.relative(LIB, file);
    const source = read(file);
    const code = stripComments(source);
    for (const spec of importSpecifiers(source)) {
      const target = resolveLocal(file, spec);
      if (target != null && inside(target, PLUGIN_DIR) && !MAY_IMPORT_PLUGIN.includes(file))
        bad.push(`${rel} imports the plug-in (${spec})`);
    }
    if (/\bfastWasm\s*\(/.test(code)) bad.push(`${rel} calls fastWasm() (the plug-in's binding)`);
    if (/\bwasm(?:Gemm|ColSum|TransposeLast2|PermuteBlocks|Gelu|L2Normalize|SoftmaxGrad|LayerNorm)\w*/.test(code))
      bad.push(`${rel} calls a wasm kernel entry point`);
    if (!inside(file, path.join(LIB, 'ops')) && /\b(?:fastOp|registerAccelerator)\b|accelerators\.js/.test(code))
      bad.push(`${rel} (outside lib/ops) asks for fast kernels`);
  }
  return bad;
}

describe('ops/accelerators: the wasm fast path is a contained plug-in', function () {
  const files = tsFiles();

  it('only lib/ops/accelerators.ts and lib/ops/index.ts import lib/ops/wasm/; nothing else names its binding or kernels', function () {
    expect(files.filter((f) => inside(f, PLUGIN_DIR)).length, 'the plug-in folder exists').to.be.greaterThan(0);
    expect(containmentViolations(files)).to.deep.equal([]);
  });

  it('lib/ops/index.ts re-exports only the documented switches of the plug-in', function () {
    const source = stripComments(fs.readFileSync(path.join(LIB, 'ops', 'index.ts'), 'utf8'));
    const fromPlugin = [...source.matchAll(/export\s*\{([^}]*)\}\s*from\s*['"]\.\/wasm\/[^'"]+['"]/g)].flatMap((m) =>
      m[1]
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
    expect(fromPlugin.length).to.be.greaterThan(0);
    expect(fromPlugin.filter((name) => !PLUGIN_PUBLIC.includes(name))).to.deep.equal([]);
    expect(source).to.not.match(/export\s*\*\s*from\s*['"]\.\/wasm\//);
  });

  it('the check catches planted violations (vit → plug-in, a binding call in moe, fastOp in vit)', function () {
    const planted: Record<string, string> = {
      [path.join(LIB, 'vit/norm.ts')]:
        "import { fastWasm } from '../ops/wasm/fast-wasm.js';\nif (fastWasm() != null) wasmLayerNorm(x);\n",
      [path.join(LIB, 'moe/soft-moe.ts')]: 'const y = wasmGemm(a, b);\n',
      [path.join(LIB, 'vit/mlp.ts')]: "import { fastOp } from '../ops/accelerators.js';\n",
      [path.join(LIB, 'ops/nn.ts')]:
        "// fastWasm() in a comment is fine\nimport { fastOp } from './accelerators.js';\n",
    };
    const found = containmentViolations(Object.keys(planted), (f) => planted[f]).join('\n');
    expect(found).to.include('vit/norm.ts imports the plug-in (../ops/wasm/fast-wasm.js)');
    expect(found).to.include('vit/norm.ts calls fastWasm()');
    expect(found).to.include('vit/norm.ts calls a wasm kernel entry point');
    expect(found).to.include('moe/soft-moe.ts calls a wasm kernel entry point');
    expect(found).to.include('vit/mlp.ts (outside lib/ops) asks for fast kernels');
    expect(found).to.not.include('ops/nn.ts');
  });
});

describe('ops/accelerators: dispatch', function () {
  let backendWas = 'cpu';
  before(async function () {
    backendWas = tf.getBackend();
    await tf.setBackend('cpu'); // no plug-in serves cpu: only the test's own
  });
  after(async function () {
    await tf.setBackend(backendWas);
  });

  it('an op uses an active plug-in, and its portable version when the plug-in is inactive, declines or is removed', function () {
    expect(fastOp('gelu'), 'no plug-in on cpu').to.equal(null);
    const x = tf.tensor([-1, 0, 2]);
    const big = tf.tensor([-1, 0, 2, 3]);
    const portable = Array.from(gelu(x).dataSync());
    const portableBig = Array.from(gelu(big).dataSync());
    expect(portable[2]).to.be.closeTo(1.9546, 1e-3); // gelu(2) = 2·σ(2c(2 + 0.044715·8))
    let on = true;
    let calls = 0;
    // Marks its result (all 7s) and declines tensors of more than 3 elements.
    const ops: Partial<FastOps> = {
      gelu: (t) => {
        calls++;
        return t.size <= 3 ? tf.fill(t.shape, 7) : null;
      },
    };
    const remove = registerAccelerator({ name: 'test', active: () => (on ? ops : null) });
    const run = (t: tf.Tensor) => tf.tidy(() => Array.from(gelu(t).dataSync()));
    try {
      expect(run(x), 'active').to.deep.equal([7, 7, 7]);
      expect(run(big), 'declined').to.deep.equal(portableBig);
      expect(calls).to.equal(2);
      expect(fastOp('softmax'), 'an op the plug-in does not supply').to.equal(null);
      on = false;
      expect(run(x), 'inactive').to.deep.equal(portable);
      expect(calls, 'inactive: not called').to.equal(2);
      on = true;
    } finally {
      remove();
    }
    expect(run(x), 'removed').to.deep.equal(portable);
    expect(calls, 'removed: not called').to.equal(2);
    tf.dispose([x, big]);
  });
});
