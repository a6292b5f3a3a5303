import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { defaultDataDir, findProjectRoot } from '../../lib/data/paths.js';

// The project root, found independently: this file is <root>/test/data/paths.test.ts.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('data/paths: finding data/ from lib/ and from dist/lib/', function () {
  it('finds the project root from lib/data (tsx) and from dist/lib/data (built JS)', function () {
    expect(findProjectRoot()).to.equal(ROOT);
    expect(findProjectRoot(join(ROOT, 'lib', 'data'))).to.equal(ROOT);
    expect(findProjectRoot(join(ROOT, 'dist', 'lib', 'data'))).to.equal(ROOT);
    expect(findProjectRoot(join(ROOT, 'notebooks'))).to.equal(ROOT);
    expect(defaultDataDir()).to.equal(join(ROOT, 'data'));
  });

  it('skips package.json files of other packages (node_modules)', function () {
    expect(findProjectRoot(join(ROOT, 'node_modules', '@tensorflow', 'tfjs', 'dist'))).to.equal(ROOT);
  });

  it('outside the project: a clear error', function () {
    const dir = mkdtempSync(join(tmpdir(), 'softmoe-noproject-'));
    try {
      expect(() => findProjectRoot(dir)).to.throw(`no package.json named "soft-moe-workbook" at or above ${dir}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
