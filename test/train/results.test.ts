import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { median, resultStatus, writeResults } from '../../lib/train/results.js';

describe('train/results: results files', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-results-'));
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('median of odd and even lists', function () {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(Number.isNaN(median([]))).to.equal(true);
  });

  it('never overwrites a finished result without force', function () {
    const path = join(dir, 'r.json');
    expect(resultStatus(path)).to.equal(null);
    writeResults(path, { status: 'running', x: 1 });
    writeResults(path, { status: 'finished', x: 2 });
    expect(resultStatus(path)).to.equal('finished');
    expect(() => writeResults(path, { status: 'running', x: 3 })).to.throw(/holds a finished result; pass --force/);
    writeResults(path, { status: 'finished', x: 4 }, { force: true });
    expect(JSON.parse(readFileSync(path, 'utf8')).x).to.equal(4);
    writeFileSync(path, 'not json');
    expect(resultStatus(path)).to.equal('unreadable');
  });
});
