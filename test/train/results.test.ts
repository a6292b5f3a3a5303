import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { acquireLock } from '../../lib/train/file-safety.js';
import { median, resultStatus, settingsDifferences, settingsHash, writeResults } from '../../lib/train/results.js';

const KIND = 'soft-moe-workbook/test-results';

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
    writeResults(path, { kind: KIND, status: 'running', x: 1 });
    writeResults(path, { kind: KIND, status: 'finished', x: 2 });
    expect(resultStatus(path)).to.equal('finished');
    expect(() => writeResults(path, { kind: KIND, status: 'running', x: 3 })).to.throw(
      /holds a finished result; pass --force/,
    );
    writeResults(path, { kind: KIND, status: 'finished', x: 4 }, { force: true });
    expect(JSON.parse(readFileSync(path, 'utf8')).x).to.equal(4);
    writeFileSync(path, 'not json');
    expect(resultStatus(path)).to.equal('foreign');
  });

  it('never overwrites a file this project did not write, even with force', function () {
    const path = join(dir, 'foreign.json');
    for (const text of ['my notes', '{"name": "package", "version": "1.0.0"}', '[1, 2]']) {
      writeFileSync(path, text);
      expect(() => writeResults(path, { kind: KIND, status: 'running' }, { force: true })).to.throw(
        new RegExp(`refusing to overwrite ${path}: it is not`),
      );
      expect(readFileSync(path, 'utf8')).to.equal(text);
    }
    // A results file from before `kind` existed is recognised by its command.
    writeFileSync(path, JSON.stringify({ status: 'failed', command: 'npm run train -- --steps 3' }));
    writeResults(path, { kind: KIND, status: 'running' });
  });

  it('with an owner, never replaces a file another run wrote; no temporary file is left on failure', function () {
    const path = join(dir, 'owned.json');
    writeResults(path, { kind: KIND, status: 'running', runId: 'a' });
    writeResults(path, { kind: KIND, status: 'running', runId: 'a' }, { owner: 'a' });
    expect(() => writeResults(path, { kind: KIND, status: 'failed', runId: 'b' }, { owner: 'b' })).to.throw(
      /another run \(runId "a"\) wrote it/,
    );
    expect(JSON.parse(readFileSync(path, 'utf8')).status).to.equal('running');
    // A write into a folder that cannot exist fails naming the path, and leaves nothing behind.
    writeFileSync(join(dir, 'plain'), 'x');
    expect(() => writeResults(join(dir, 'plain', 'r.json'), { kind: KIND, status: 'running' })).to.throw(
      /plain\/r\.json: .*(ENOTDIR|EEXIST)/,
    );
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
  });

  it("a lock is exclusive, names its holder, and a dead holder's lock is taken over", function () {
    const target = join(dir, 'locked.json');
    const lock = acquireLock(target);
    expect(() => acquireLock(target)).to.throw(new RegExp(`is locked: process ${process.pid} on`));
    lock.release();
    const again = acquireLock(target);
    again.release();
    // pid 2^22 + 1 is above Linux's pid_max default (2^22): no such process.
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: 4194305, host: hostname(), startedAt: 'then', token: 'x' }));
    acquireLock(target).release();
    expect(readdirSync(dir).filter((f) => f.endsWith('.lock'))).to.deep.equal([]);
  });

  it('settings: the hash ignores key order; differences are listed by dotted key', function () {
    expect(settingsHash({ a: 1, b: { c: 2, d: [1, 2] } })).to.equal(settingsHash({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(settingsHash({ a: 1 })).to.not.equal(settingsHash({ a: 2 }));
    expect(settingsDifferences({ a: 1, b: { c: 2 } }, { a: 1, b: { c: 3 }, e: 4 })).to.deep.equal([
      'b.c: 2 in the file, 3 now',
      'e: (not set) in the file, 4 now',
    ]);
    expect(settingsDifferences({ a: 1 }, { a: 1, e: 4 }, { ignoreMissing: true })).to.deep.equal([]);
  });
});
