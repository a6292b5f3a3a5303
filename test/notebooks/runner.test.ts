// The notebook runner's checks, on fixture notebooks (test/fixtures/notebooks/):
// failing-cell.ipynb throws in cell 2; strict-type-error.ipynb runs under tslab but holds a
// strictNullChecks error in cell 2, line 2; with-outputs.ipynb was saved with an output.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { BUILD_DIR, ROOT } from '../../lib/cli/jupyter.js';
import { cleanErrorText, executeNotebook } from '../../lib/cli/notebook-exec.js';
import { checkClean, readNotebook, stripOutputs } from '../../lib/cli/notebook-files.js';
import { notebookToModule, typecheckNotebooks } from '../../lib/cli/notebook-typecheck.js';
import { ensureBuild, ensureJupyter, ensureKernel } from '../../lib/cli/setup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(here, '..', 'fixtures', 'notebooks');
const fixture = (name: string) => path.join(FIXTURES, name);
const OUT = path.join(BUILD_DIR, 'test-notebooks');

describe('notebook runner', function () {
  this.timeout(240000);

  before(() => {
    fs.rmSync(OUT, { recursive: true, force: true });
    fs.mkdirSync(OUT, { recursive: true });
  });

  it('fails on a throwing cell, naming the notebook, the cell and the thrown message (CLI)', () => {
    ensureBuild();
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'lib', 'cli', 'run-notebooks.ts'),
        fixture('failing-cell.ipynb'),
        '--skip-clean',
        '--skip-types',
        '--out',
        OUT,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const output = r.stdout + r.stderr;
    expect(r.status, output).to.equal(1);
    expect(output).to.contain('test/fixtures/notebooks/failing-cell.ipynb cell 2 failed (error)');
    expect(output).to.contain('Error: planted failure: depth 3 > 2');
    expect(output).to.match(/notebooks: 0 passed, 1 failed/);
    // The message is the cell's own error: no Node warning lines, no kernel stack frames.
    const report = output.slice(output.indexOf('  error:'), output.indexOf('  executed copy:'));
    expect(report).to.contain('planted failure');
    expect(report).not.to.contain('ExperimentalWarning');
    expect(report).not.to.match(/tslab[\\/]dist/);

    // The executed copy is written even though a cell failed: cell 1's warning is kept as a
    // note, cell 3 never ran.
    const executed = readNotebook(path.join(OUT, 'failing-cell.ipynb'));
    expect(JSON.stringify(executed.cells[1]!.outputs)).to.contain('fixture warning, not an error');
    expect(executed.cells[3]!.outputs).to.deep.equal([]);
    expect(fs.existsSync(path.join(OUT, 'failing-cell.html'))).to.equal(true);
  });

  it('type-checks code cells strictly and maps the planted error to its cell and line', () => {
    ensureBuild();
    const diagnostics = typecheckNotebooks([fixture('strict-type-error.ipynb')], path.join(OUT, 'typecheck'));
    expect(diagnostics.map((d) => [d.cell, d.line, d.code])).to.deep.equal([[2, 2, 'TS2322']]);
    expect(diagnostics[0]!.message).to.contain("Type 'number | undefined' is not assignable to type 'number'");
  });

  it('tslab alone runs that notebook: the strict check is what catches the error', async () => {
    const python = ensureJupyter();
    ensureKernel(python);
    const r = await executeNotebook(fixture('strict-type-error.ipynb'), {
      python,
      executed: path.join(OUT, 'strict-type-error.ipynb'),
      html: false,
    });
    expect(r.failure, JSON.stringify(r.failure)).to.equal(null);
    expect(r.ok).to.equal(true);
    expect(r.cells.map((c) => c.index)).to.deep.equal([1, 2]);
  });

  it('in a real kernel, show() sends one bundle per figure (plotly.js only in the first) and progress updates one line', async () => {
    ensureBuild();
    const python = ensureJupyter();
    ensureKernel(python);
    const r = await executeNotebook(fixture('displays.ipynb'), {
      python,
      executed: path.join(OUT, 'displays.ipynb'),
      html: false,
    });
    expect(r.failure, JSON.stringify(r.failure)).to.equal(null);
    type Output = { output_type: string; data?: Record<string, unknown> };
    const outputs = readNotebook(path.join(OUT, 'displays.ipynb')).cells.map((c) => (c.outputs ?? []) as Output[]);
    const [first, second, progress] = [outputs[1]!, outputs[2]!, outputs[3]!];
    for (const out of [first, second]) {
      expect(out).to.have.length(1);
      expect(Object.keys(out[0]!.data!).sort()).to.deep.equal([
        'application/vnd.plotly.v1+json',
        'text/html',
        'text/plain',
      ]);
    }
    // nbformat may store a text output as a list of lines.
    const text = (v: unknown) => (Array.isArray(v) ? v.join('') : String(v));
    const html = (o: Output[]) => text(o[0]!.data!['text/html']);
    // plotly.js (4.8 MB) rides with the first figure of the session only.
    expect(html(first).length).to.be.greaterThan(4e6);
    expect(html(second).length).to.be.lessThan(1e4);
    expect(text(second[0]!.data!['text/plain'])).to.equal('"second": bar "load" (2 points)');
    // Five updates of one display: nbclient keeps a single output holding the final state.
    expect(progress).to.have.length(1);
    expect(text(progress[0]!.data!['text/plain'])).to.match(/^fixture █{24} 5\/5 100% {2}\d+\.\d s {2}done$/);
  });

  it('rewrites relative imports for the check and rejects imports of the library sources', () => {
    const dir = path.join(OUT, 'nb');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'imports.ipynb');
    const nb = JSON.parse(fs.readFileSync(fixture('strict-type-error.ipynb'), 'utf8')) as {
      cells: { source: string[] }[];
    };
    // This notebook sits in build/test-notebooks/nb/, so the library's build is ../../../dist.
    nb.cells[1]!.source = [
      "import * as sm from '../../../dist/lib/node.js';\n",
      "import { softMoE } from '../../../lib/moe/soft-moe.js';\n",
      'console.log(sm, softMoE);',
    ];
    fs.writeFileSync(file, JSON.stringify(nb));
    // Generated one folder deeper than the notebook: every relative specifier gains one '../'.
    const out = path.join(OUT, 'typecheck-imports', 'deeper', 'imports.ts');
    const { text, problems } = notebookToModule(file, out);
    expect(text).to.contain("import * as sm from '../../../../dist/lib/node.js';");
    expect(text).to.contain("from '../../../../lib/moe/soft-moe.js'");
    expect(problems).to.have.length(1);
    expect(problems[0]!).to.include({ cell: 1, line: 2 });
    expect(problems[0]!.message).to.match(/imports the library's TypeScript sources.*'\.\.\/dist\/lib\/node\.js'/);
  });

  it('the clean check flags outputs and execution counts; --strip removes them', () => {
    expect(checkClean([fixture('with-outputs.ipynb')]).map((p) => [p.cell, p.problem])).to.deep.equal([
      [0, 'has 1 output(s)'],
      [0, 'has execution_count 1'],
    ]);
    const copy = path.join(OUT, 'with-outputs.ipynb');
    fs.copyFileSync(fixture('with-outputs.ipynb'), copy);
    expect(stripOutputs(copy)).to.equal(true);
    expect(checkClean([copy])).to.deep.equal([]);
    expect(
      checkClean([fixture('failing-cell.ipynb'), fixture('strict-type-error.ipynb'), fixture('displays.ipynb')]),
    ).to.deep.equal([]);
  });

  it('the built library loads through require(), as tslab cells load it', () => {
    // tslab compiles cells to CommonJS, so `import * as sm from '../dist/lib/node.js'` becomes a
    // require() of an ES module: Node ≥ 20.19 allows it unless the module graph has top-level await.
    ensureBuild();
    const entry = path.join(ROOT, 'dist', 'lib', 'node.js');
    const code = `const sm = require(${JSON.stringify(entry)}); console.log(typeof sm.SoftMoELayer, typeof sm.plot.show, typeof sm.initBackend);`;
    const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('function function function');
  });

  it('drops Node warnings and kernel stack frames from error text, keeping the error', () => {
    const stderr = [
      '(node:12) ExperimentalWarning: CommonJS module /x.js is loading ES Module /y.js using require().',
      '(Use `node --trace-warnings ...` to show where the warning was created)',
      'Error: boom',
      '    at evalmachine.<anonymous>:4:11',
      '    at Script.runInThisContext (node:vm:135:14)',
      '    at Object.execute (/p/node_modules/tslab/dist/executor.js:160:38)',
    ].join('\n');
    expect(cleanErrorText(stderr)).to.equal('Error: boom\n    at evalmachine.<anonymous>:4:11');
  });
});
