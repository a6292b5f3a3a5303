/** The experiment command line (lib/cli/train.ts) end to end on the tiny data set. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { findProjectRoot } from '../../lib/data/paths.js';

describe('cli/train: npm run train', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-cli-'));
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a complete results file, and a sweep skips finished runs', function () {
    this.timeout(120000);
    const root = findProjectRoot();
    const run = (extra: string[]) =>
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(root, 'lib', 'cli', 'train.ts'),
          '--dataset',
          'tiny-mnist',
          '--size',
          'tiny',
          '--experts',
          '4',
          '--steps',
          '6',
          '--batch-size',
          '32',
          '--validation',
          '64',
          '--eval-every',
          '3',
          '--results-dir',
          dir,
          ...extra,
        ],
        {
          cwd: root,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, SOFTMOE_BACKEND: 'wasm' },
        },
      );
    run(['--sweep', 'model=dense,soft+slots=2']);
    const files = readdirSync(dir)
      .filter((f) => f.startsWith('tiny-mnist'))
      .sort();
    expect(files).to.deep.equal([
      'tiny-mnist_dense_tiny_6steps_seed0.json',
      'tiny-mnist_soft-e4-p2_tiny_6steps_seed0.json',
    ]);
    const doc = JSON.parse(readFileSync(join(dir, files[1]), 'utf8'));
    expect(doc.status).to.equal('finished');
    expect(doc.config.model.kind).to.equal('soft');
    expect(doc.config.model.moe.slotsPerExpert).to.equal(2);
    expect(doc.config.trainer.steps).to.equal(6);
    // Soft MoE diagnostics on the probe (the first 64 validation images) before training and at each evaluation.
    expect(doc.curves.diagnostics.map((r: { step: number }) => r.step)).to.deep.equal([0, 3, 6]);
    expect(doc.summary.finalDiagnostics.block1.slots).to.equal(8);
    expect(doc.config.evaluation.probeExamples).to.equal(64);
    expect(doc.config.data).to.include({ trainCount: 512 - 64, validationCount: 64, testCount: 256 });
    expect(doc.backend.name).to.equal('wasm');
    expect(doc.machine.cores).to.be.a('number');
    expect(doc.versions.tfjs).to.equal('4.22.0');
    expect(doc.git === null || /^[0-9a-f]{40}$/.test(doc.git.commit)).to.equal(true);
    expect(doc.curves.loss).to.have.length(6);
    expect(doc.curves.validation.map((v: { step: number }) => v.step)).to.deep.equal([3, 6]);
    expect(doc.summary.testAccuracy).to.be.within(0, 1);
    expect(doc.summary.testCount).to.equal(256);
    expect(doc.summary.msPerStepMedian).to.be.greaterThan(0);
    expect(doc.cost.parameters).to.equal(doc.cost.parameterCountFromVariables);
    expect(doc.cost.flopsPerImage.total).to.be.greaterThan(0);
    const before = readFileSync(join(dir, files[1]), 'utf8');
    const log = run(['--model', 'soft', '--slots', '2', '--dry-run']);
    expect(log).to.match(/^finished\t.*soft-e4-p2/);
    run(['--model', 'soft', '--slots', '2']);
    expect(readFileSync(join(dir, files[1]), 'utf8')).to.equal(before);
  });

  it('rejects bad options with clear messages', function () {
    const root = findProjectRoot();
    const fail = (args: string[]) => {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli', 'train.ts'), ...args], {
          cwd: root,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        return String((e as { stderr: string }).stderr);
      }
      return '';
    };
    expect(fail(['--model', 'sparse', '--steps', '5', '--dry-run'])).to.match(
      /--model must be one of dense, soft, tokens-choice, experts-choice, got "sparse"/,
    );
    expect(fail(['--steps', 'many', '--dry-run'])).to.match(/--steps must be an integer ≥ 1, got "many"/);
    expect(fail(['--dry-run'])).to.match(/give exactly one of --steps N or --epochs E/);
    expect(fail(['--steps', '5', '--sweep', 'seed', '--dry-run'])).to.match(
      /--sweep axis must look like key=a,b,c, got "seed"/,
    );
    expect(fail(['--steps', '5', '--normalize', 'yes', '--dry-run'])).to.match(
      /--normalize must be one of true, false, got "yes"/,
    );
    expect(fail(['--steps', '5', '--scale-lr-mult=-2', '--dry-run'])).to.match(
      /--scale-lr-mult must be a number ≥ 0, got "-2"/,
    );
    expect(fail(['--steps', '5', '--scale-init', 'big', '--dry-run'])).to.match(
      /--scale-init must be a number, got "big"/,
    );
  });
});
