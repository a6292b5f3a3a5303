/**
 * Dependencies run one way (issue 13): ops → core → moe → vit → train → cli, with data, plot
 * and bench beside, depending on nothing above ops/core. The table below is the one statement
 * of the layering; a lib/ file importing a folder not listed for its own folder fails here.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LIB, importSpecifiers, resolveLocal, tsFiles } from './helpers/imports.js';

/** What each folder of lib/ (or top-level file, without .ts) may import, besides itself. */
export const ALLOWED: Record<string, readonly string[]> = {
  ops: [],
  core: ['ops'],
  moe: ['ops', 'core'],
  vit: ['ops', 'core', 'moe'],
  // The tf.layers adapters over the moe functions, beside vit.
  layers: ['ops', 'core', 'moe'],
  data: ['ops', 'core'],
  plot: ['ops', 'core'],
  bench: ['ops', 'core'],
  // The webgpu backend (lib/webgpu): device, work-arounds, Dawn for Node; picked by backend.ts.
  webgpu: ['ops', 'core'],
  backend: ['ops', 'core', 'webgpu'],
  train: ['ops', 'core', 'moe', 'vit', 'data'],
  cli: ['ops', 'core', 'moe', 'vit', 'layers', 'data', 'plot', 'bench', 'backend', 'webgpu', 'train', 'node'],
  // Entry points: re-exports only.
  index: ['ops', 'core', 'moe', 'vit', 'layers', 'data', 'plot', 'bench', 'backend', 'webgpu', 'train'],
  node: ['ops', 'core', 'moe', 'vit', 'layers', 'data', 'plot', 'bench', 'backend', 'webgpu', 'train', 'index'],
};

/** The layer of a lib/ file: its first folder under lib/, or its name for a top-level file. */
function layerOf(file: string): string {
  const first = path.relative(LIB, file).split(path.sep)[0];
  return first.replace(/\.ts$/, '');
}

/** Imports running the wrong way, as "from → to" lines, for the given files and sources. */
export function violations(
  files: readonly string[],
  read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'),
): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    for (const spec of importSpecifiers(read(file))) {
      const target = resolveLocal(file, spec);
      if (target == null) continue;
      const to = layerOf(target);
      if (!target.startsWith(LIB + path.sep)) bad.push(`${path.relative(LIB, file)} imports ${spec}, outside lib/`);
      else if (allowed == null) bad.push(`${path.relative(LIB, file)}: layer '${from}' is not in the table`);
      else if (to !== from && !allowed.includes(to))
        bad.push(`${path.relative(LIB, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  return bad;
}

describe('architecture: imports run one way', function () {
  const files = tsFiles();

  it('finds the imports of lib/ (the parser sees the graph)', function () {
    expect(files.length).to.be.greaterThan(50);
    const moe = importSpecifiers(fs.readFileSync(path.join(LIB, 'moe/soft-moe.ts'), 'utf8'));
    expect(moe).to.include('../ops/check.js');
  });

  it('every lib/ folder is in the layering table', function () {
    const layers = new Set(files.map(layerOf));
    expect([...layers].filter((l) => !(l in ALLOWED))).to.deep.equal([]);
  });

  it('no import runs upward or sideways out of the table', function () {
    expect(violations(files)).to.deep.equal([]);
  });

  it('a planted upward import is caught (ops → moe, plot → cli, vit → train, dynamic and re-export)', function () {
    const planted: Record<string, string> = {
      [path.join(LIB, 'ops/check.ts')]: "import { softMoE } from '../moe/soft-moe.js';\n",
      [path.join(LIB, 'plot/progress.ts')]: "import { x } from '../cli/train.js';\n",
      [path.join(LIB, 'vit/vit.ts')]:
        "export * from '../train/trainer.js';\nconst t = await import('../train/index.js');\n",
      [path.join(LIB, 'core/module.ts')]: "// import { x } from '../moe/layers.js'; (a comment, not an import)\n",
    };
    const found = violations(Object.keys(planted), (f) => planted[f]);
    expect(found).to.have.length(4);
    expect(found.join('\n')).to.include('ops/check.ts (ops) imports ../moe/soft-moe.js (moe)');
    expect(found.join('\n')).to.include('plot/progress.ts (plot) imports ../cli/train.js (cli)');
  });
});
