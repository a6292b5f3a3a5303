/**
 * The public surface changes only on purpose: the names the two entries export at run time
 * (lib/index.ts, the package root, and lib/node.ts, 'soft-moe-workbook/node'), each with its
 * kind, are compared to the committed snapshot test/fixtures/exports.json. Types and interfaces
 * have no run-time value and are not listed here; `npm run docs` checks that they are documented.
 *
 * After adding, removing or renaming an export on purpose, update the snapshot and commit it:
 *   UPDATE_EXPORTS=1 npm run test:exports   (this file alone; `npm run test:unit` runs it too)
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as root from '../lib/index.js';
import * as node from '../lib/node.js';

const SNAPSHOT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/exports.json');
const UPDATE_HINT =
  'if the change is on purpose, update the snapshot with `UPDATE_EXPORTS=1 npm run test:exports` and commit test/fixtures/exports.json';

/** Name → kind for one module namespace; namespace members are listed as `ns.member`. */
export type ExportKinds = Record<string, string>;

/**
 * A module namespace (`export * as plot`): a real one under native ESM; under tsx (esbuild) an
 * object whose properties are all getters. Exported constant objects have data properties.
 */
function isNamespace(value: object): boolean {
  if (Object.prototype.toString.call(value) === '[object Module]') return true;
  const descriptors = Object.values(Object.getOwnPropertyDescriptors(value));
  return descriptors.length > 0 && descriptors.every((d) => d.get != null && d.set == null);
}

/** The kind of a run-time export: class, function, namespace, or const (any other value). */
function kindOf(value: unknown): string {
  if (typeof value === 'function') {
    return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
  }
  if (value != null && typeof value === 'object' && isNamespace(value)) return 'namespace';
  return 'const';
}

/** The sorted names and kinds a module namespace exports, namespace members included. */
export function exportKinds(namespace: object): ExportKinds {
  const out: ExportKinds = {};
  for (const name of Object.keys(namespace).sort()) {
    const value = (namespace as Record<string, unknown>)[name];
    const kind = kindOf(value);
    out[name] = kind;
    if (kind === 'namespace') {
      for (const member of Object.keys(value as object).sort())
        out[`${name}.${member}`] = kindOf((value as Record<string, unknown>)[member]);
    }
  }
  return out;
}

/** Lines for the names added, removed or changed in kind between `expected` and `actual`. */
export function exportDiff(expected: ExportKinds, actual: ExportKinds): string[] {
  const lines: string[] = [];
  for (const name of Object.keys(actual).sort()) {
    if (!(name in expected)) lines.push(`  added:   ${name} (${actual[name]})`);
    else if (expected[name] !== actual[name]) lines.push(`  changed: ${name} (${expected[name]} → ${actual[name]})`);
  }
  for (const name of Object.keys(expected).sort())
    if (!(name in actual)) lines.push(`  removed: ${name} (${expected[name]})`);
  return lines;
}

describe('exports snapshot: the public surface changes only on purpose', function () {
  const actual: Record<string, ExportKinds> = { index: exportKinds(root), node: exportKinds(node) };

  if (process.env.UPDATE_EXPORTS === '1') {
    fs.writeFileSync(SNAPSHOT, JSON.stringify(actual, null, 2) + '\n');
    console.log(`    wrote ${path.relative(process.cwd(), SNAPSHOT)}`);
  }

  const expected = JSON.parse(fs.readFileSync(SNAPSHOT, 'utf8')) as Record<string, ExportKinds>;

  for (const entry of ['index', 'node'] as const) {
    it(`lib/${entry}.ts exports the names in test/fixtures/exports.json`, function () {
      const diff = exportDiff(expected[entry] ?? {}, actual[entry]);
      if (diff.length > 0)
        expect.fail(`lib/${entry}.ts exports differ from the snapshot:\n${diff.join('\n')}\n${UPDATE_HINT}`);
    });
  }

  it('the node entry re-exports everything of the root (plot is widened to the Node plot)', function () {
    const missing = Object.keys(actual.index).filter((name) => !(name in actual.node));
    expect(missing).to.deep.equal([]);
  });

  it('sees kinds and reports additions, removals and kind changes', function () {
    expect(actual.index.softMoE).to.equal('function');
    expect(actual.index.SoftMoELayer).to.equal('class');
    expect(actual.index.plot).to.equal('namespace');
    expect(actual.node['plot.show']).to.equal('function');
    expect(actual.index['plot.show'], 'show() is Node-only').to.equal(undefined);
    const diff = exportDiff({ a: 'function', b: 'class', c: 'const' }, { a: 'function', b: 'function', d: 'const' });
    expect(diff).to.deep.equal(['  changed: b (class → function)', '  added:   d (const)', '  removed: c (const)']);
  });
});
