/**
 * File safety of the training command line (lib/cli/train.ts): results are never lost or
 * overwritten by accident. Tiny data and a tiny model, so each run takes a few seconds.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { findProjectRoot } from '../../lib/data/paths.js';
import { readCheckpoint } from '../../lib/train/checkpoint.js';

const ROOT = findProjectRoot();
const TINY = [
  '--dataset',
  'tiny-mnist',
  '--size',
  'tiny',
  '--model',
  'soft',
  '--experts',
  '4',
  '--batch-size',
  '32',
  '--eval-examples',
  '16',
  '--validation',
  '64',
];

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start the CLI; `done` resolves when it exits. */
function start(args: string[], options: { ulimitFileKB?: number } = {}) {
  const node = [process.execPath, '--import', 'tsx', join(ROOT, 'lib', 'cli', 'train.ts'), ...args];
  // `ulimit -f` makes writes past the limit fail with EFBIG (Node ignores SIGXFSZ): a full disk.
  const child =
    options.ulimitFileKB != null
      ? spawn('bash', ['-c', `ulimit -f ${options.ulimitFileKB}; exec "$@"`, 'bash', ...node], {
          cwd: ROOT,
          env: { ...process.env, SOFTMOE_BACKEND: 'wasm' },
        })
      : spawn(node[0], node.slice(1), { cwd: ROOT, env: { ...process.env, SOFTMOE_BACKEND: 'wasm' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Done>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? -1 : null), stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

const run = (args: string[], options: { ulimitFileKB?: number } = {}) => start(args, options).done;

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 60000): Promise<void> {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readJson(path: string): Record<string, unknown> & { status: string } {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> & { status: string };
}

function statusOf(path: string): string | null {
  try {
    return readJson(path).status;
  } catch {
    return null;
  }
}

/** Temporary and lock files left in `dir`. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.tmp-|\.lock$/.test(f));
}

describe('cli/train: file safety', function () {
  this.timeout(180000);
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-files-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('two runs on one results file: the second is refused and the first result survives', async function () {
    const out = join(dir, 'c.json');
    const first = start([...TINY, '--steps', '60', '--eval-every', '20', '--out', out]);
    await waitFor('the first run to write its file', () => statusOf(out) === 'running');
    const second = await run([...TINY, '--steps', '60', '--eval-every', '20', '--seed', '1', '--out', out]);
    const a = await first.done;
    expect(a.code, a.stderr).to.equal(0);
    expect(second.code).to.equal(1);
    expect(second.stderr).to.match(/is locked: process \d+/);
    const doc = readJson(out);
    expect(doc.status).to.equal('finished');
    expect((doc.settings as { model: { seed: number } }).model.seed).to.equal(0);
    expect(leftovers(dir)).to.deep.equal([]);
    // Once the first has finished, the other settings are refused by name, and the file stays.
    const before = readFileSync(out, 'utf8');
    const third = await run([...TINY, '--steps', '60', '--eval-every', '20', '--seed', '1', '--out', out]);
    expect(third.code).to.equal(1);
    expect(third.stderr).to.match(/holds a finished run with other settings:\s+model\.seed: 0 in the file, 1 now/);
    expect(readFileSync(out, 'utf8')).to.equal(before);
  });

  it('never overwrites a file it did not write (--out, --force and --dry-run alike)', async function () {
    const out = join(dir, 'notes.txt');
    writeFileSync(out, 'my notes\n');
    for (const extra of [[], ['--force']]) {
      const r = await run([...TINY, '--steps', '3', '--out', out, ...extra]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(`refusing to write ${out}: it is not JSON`);
    }
    const dry = await run([...TINY, '--steps', '3', '--out', join(ROOT, 'package.json'), '--dry-run']);
    expect(dry.code).to.equal(1);
    expect(dry.stdout).to.match(/^refused: refusing to write .*package\.json: it is not a results file/);
    expect(readFileSync(out, 'utf8')).to.equal('my notes\n');
    const ckpt = join(dir, 'ckpt.bin');
    writeFileSync(ckpt, 'not a checkpoint');
    const r = await run([...TINY, '--steps', '3', '--results-dir', dir, '--checkpoint', ckpt]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include(`refusing to overwrite ${ckpt}: it exists and is not a checkpoint`);
    expect(readFileSync(ckpt, 'utf8')).to.equal('not a checkpoint');
  });

  it('a finished run is skipped only with the same settings; others are refused by name; bad settings fail first', async function () {
    const base = [...TINY, '--steps', '4', '--eval-every', '0', '--results-dir', dir];
    expect((await run(base)).code).to.equal(0);
    const [file] = readdirSync(dir).filter((f) => f.endsWith('.json'));
    const path = join(dir, file);
    const before = readFileSync(path, 'utf8');
    expect(readJson(path).settingsHash).to.match(/^[0-9a-f]{16}$/);

    const same = await run(base);
    expect(same.code).to.equal(0);
    expect(same.stderr).to.include('finished result with these settings exists');

    const changed = await run([...base, '--lr', '3e-3', '--warmup', '1', '--heads', '4']);
    expect(changed.code).to.equal(1);
    expect(changed.stderr).to.include('trainer.learningRate: 0.001 in the file, 0.003 now');
    expect(changed.stderr).to.include('trainer.warmupSteps: 0 in the file, 1 now');
    expect(changed.stderr).to.include('model.numHeads: 2 in the file, 4 now');
    expect(changed.stderr).to.match(/--tag NAME.*--force/);

    const invalid = await run([...base, '--heads', '3']);
    expect(invalid.code).to.equal(1);
    expect(invalid.stderr).to.include('numHeads 3 must divide dim 16');
    expect(readFileSync(path, 'utf8')).to.equal(before);

    const dry = await run([...base, '--clip', '0.5', '--dry-run']);
    expect(dry.stdout).to.match(/^refused: .*trainer\.adam\.clipNorm: 1 in the file, 0\.5 now/);
  });

  it('SIGINT stops after the current update: valid results file (interrupted), valid checkpoint, no temporary files', async function () {
    const out = join(dir, 'r.json');
    const ckpt = join(dir, 'r.ckpt');
    // Checkpoint after every update, so the signal is likely to land during a checkpoint write.
    const p = start([
      ...TINY,
      '--steps',
      '5000',
      '--eval-every',
      '0',
      '--out',
      out,
      '--checkpoint',
      ckpt,
      '--checkpoint-every',
      '1',
    ]);
    await waitFor('a checkpoint', () => existsSync(ckpt) && statusOf(out) === 'running');
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code, r.stderr).to.equal(130);
    const doc = readJson(out);
    expect(doc.status).to.equal('interrupted');
    expect(doc.error).to.match(/training interrupted after update \d+ \(SIGINT\)/);
    expect(leftovers(dir)).to.deep.equal([]);
    const { meta } = await readCheckpoint<{ step: number }>(ckpt);
    expect(meta.step).to.be.greaterThan(0);
  });

  it('a second SIGTERM stops at once and still leaves valid files', async function () {
    const out = join(dir, 'r.json');
    const ckpt = join(dir, 'r.ckpt');
    const p = start([
      ...TINY,
      '--steps',
      '5000',
      '--eval-every',
      '0',
      '--out',
      out,
      '--checkpoint',
      ckpt,
      '--checkpoint-every',
      '1',
    ]);
    await waitFor('a checkpoint', () => existsSync(ckpt) && statusOf(out) === 'running');
    p.child.kill('SIGTERM');
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.code, r.stderr).to.equal(143);
    expect(readJson(out).status).to.equal('interrupted');
    expect(leftovers(dir)).to.deep.equal([]);
    await readCheckpoint(ckpt);
  });

  it('a full disk while checkpointing fails the run cleanly: status failed, no temporary files, the path named', async function () {
    const out = join(dir, 'r.json');
    const ckpt = join(dir, 'r.ckpt');
    // 64 KiB: the results file fits, the checkpoint (≈ 3 × the parameters × 4 bytes) does not.
    const r = await run([...TINY, '--steps', '4', '--eval-every', '0', '--out', out, '--checkpoint', ckpt], {
      ulimitFileKB: 64,
    });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include(`cannot write ${ckpt}: EFBIG`);
    const doc = readJson(out);
    expect(doc.status).to.equal('failed');
    expect(doc.error).to.include('EFBIG');
    expect(leftovers(dir)).to.deep.equal([]);
  });

  it('a diverging run fails with a clear message instead of finishing', async function () {
    const out = join(dir, 'd.json');
    const r = await run([
      ...TINY,
      '--steps',
      '40',
      '--eval-every',
      '0',
      '--lr',
      '1e30',
      '--warmup',
      '0',
      '--clip',
      '0',
      '--out',
      out,
    ]);
    expect(r.code).to.equal(1);
    // Measured: update 2 has loss ≈ 1e31, far above 10 × ln 10 = 23.03 (and still finite).
    expect(r.stderr).to.match(
      /training diverged at update \d+: loss \S+ is above 10 × max\(first loss 2\.30\d, ln 10\) = 23\.03/,
    );
    expect(readJson(out).status).to.equal('failed');
  });

  it('a results folder that does not exist yet is created (--results-dir)', async function () {
    const nested = join(dir, 'new', 'folder');
    const r = await run([...TINY, '--steps', '2', '--eval-every', '0', '--results-dir', nested]);
    expect(r.code, r.stderr).to.equal(0);
    const files = readdirSync(nested).filter((f) => f.endsWith('.json'));
    expect(files).to.have.length(1);
    expect(readJson(join(nested, files[0])).status).to.equal('finished');
  });

  it('--checkpoint alone checkpoints (every --eval-every updates and at the end); tiny data adapts the validation size', async function () {
    const out = join(dir, 'k.json');
    const ckpt = join(dir, 'k.ckpt');
    const args = [
      '--dataset',
      'tiny-mnist',
      '--size',
      'tiny',
      '--model',
      'dense',
      '--batch-size',
      '32',
      '--steps',
      '3',
      '--eval-every',
      '2',
      '--out',
      out,
      '--checkpoint',
      ckpt,
    ];
    const r = await run(args);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include(`checkpoint every 2 updates to ${ckpt}`);
    const { meta } = await readCheckpoint<{ step: number }>(ckpt);
    expect(meta.step).to.equal(3);
    // No --validation: min(5000, 10% of the 512 tiny training images) = 51.
    const doc = readJson(out) as unknown as { config: { data: { validationCount: number; trainCount: number } } };
    expect(doc.config.data).to.include({ validationCount: 51, trainCount: 512 - 51 });
    const bad = await run([
      ...args.filter((a) => a !== ckpt && a !== '--checkpoint'),
      '--checkpoint-every',
      '2',
      '--dry-run',
    ]);
    expect(bad.stderr).to.include('--checkpoint-every needs --checkpoint FILE');
  });

  it('a tag or swept value cannot lead the file out of its folder', async function () {
    const tag = await run([...TINY, '--steps', '3', '--results-dir', dir, '--tag', '../escape', '--dry-run']);
    expect(tag.stderr).to.include('--tag must be letters, digits');
    const sweep = await run([...TINY, '--steps', '3', '--results-dir', dir, '--sweep', 'lr=1e-3/../../x', '--dry-run']);
    expect(sweep.code).to.equal(1);
    expect(sweep.stderr).to.match(/--lr must be a number|would leave its folder/);
  });
});
