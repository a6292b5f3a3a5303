/**
 * The package root (lib/index.ts) is browser-safe: no module it reaches at run time imports a
 * Node built-in (node:fs, child_process, …) or touches the `process`, `Buffer` or `require`
 * globals. The Node-only parts live behind lib/node.ts ('soft-moe-workbook/node').
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { LIB, resolveLocal, runtimeImportSpecifiers, stripComments } from './helpers/imports.js';

const BUILTINS = new Set(builtinModules);
// The one guarded reader of environment variables: `globalThis.process?.env`, undefined in a browser.
const ENV_READER = path.join(LIB, 'ops/env.ts');

interface Finding {
  file: string;
  problem: string;
}

/** Walk the run-time import graph from `entry`; report Node-only imports and globals. */
export function nodeOnlyReach(
  entry: string,
  read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'),
): { files: string[]; findings: Finding[] } {
  const seen = new Set<string>();
  const findings: Finding[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = read(file);
    const rel = path.relative(LIB, file);
    for (const spec of runtimeImportSpecifiers(source)) {
      const local = resolveLocal(file, spec);
      if (local != null) queue.push(local);
      else if (spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0]))
        findings.push({ file: rel, problem: `imports ${spec}` });
    }
    if (file !== ENV_READER) {
      const code = stripComments(source).replace(/(['"`])(?:\\.|(?!\1)[^\\])*\1/g, '""');
      for (const global of ['process', 'Buffer', 'require', '__dirname']) {
        if (new RegExp(`(^|[^.\\w$])${global}\\b`).test(code)) findings.push({ file: rel, problem: `uses ${global}` });
      }
    }
  }
  return { files: [...seen].sort(), findings };
}

describe('package root: browser-safe', function () {
  it('lib/index.ts reaches no Node built-in and no process/Buffer/require global', function () {
    const { files, findings } = nodeOnlyReach(path.join(LIB, 'index.ts'));
    expect(files.length, 'the walk sees the library').to.be.greaterThan(40);
    expect(findings).to.deep.equal([]);
  });

  it('the Node entry reaches the Node-only parts (the walk is not blind)', function () {
    const { findings } = nodeOnlyReach(path.join(LIB, 'node.ts'));
    const problems = findings.map((f) => `${f.file}: ${f.problem}`);
    expect(problems).to.include('train/results.ts: imports node:child_process');
    expect(problems).to.include('data/manifest.ts: imports node:fs');
  });

  it('a planted Node import or process use is caught; type-only imports and comments are not', function () {
    const entry = path.join(LIB, 'index.ts');
    const planted: Record<string, string> = {
      [entry]: "export * from './a.js';\nexport * from './b.js';\nimport type { X } from './c.js';\n",
      [path.join(LIB, 'a.ts')]:
        "import { readFileSync } from 'fs';\n// process.env in a comment\nconst s = 'process.env in a string';\n",
      [path.join(LIB, 'b.ts')]: 'export const seed = Number(process.env.SEED);\n',
      [path.join(LIB, 'c.ts')]: "import * as fs from 'node:fs';\n",
    };
    const { files, findings } = nodeOnlyReach(entry, (f) => planted[f]);
    expect(files.map((f) => path.relative(LIB, f))).to.deep.equal(['a.ts', 'b.ts', 'index.ts']);
    expect(findings).to.deep.equal([
      { file: 'b.ts', problem: 'uses process' },
      { file: 'a.ts', problem: 'imports fs' },
    ]);
  });
});
