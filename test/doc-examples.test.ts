/**
 * The `@example` blocks of the API reference compile: every ```ts block inside an `@example` of a
 * doc comment in lib/ is type-checked with the project's strict settings, as the body of an async
 * function that sees every name the Node entry (lib/node.ts) exports (`tf` among them). Examples are not
 * run (several load the full data sets or train).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { LIB, tsFiles } from './helpers/imports.js';

interface Example {
  file: string;
  line: number;
  code: string;
}

/** The ```ts blocks of `@example` tags in the doc comments of `source`. */
export function docExamples(file: string, source: string): Example[] {
  const out: Example[] = [];
  for (const comment of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const lines = comment[0].split('\n').map((l) => l.replace(/^\s*\*? ?/, ''));
    const firstLine = source.slice(0, comment.index).split('\n').length;
    let inExample = false;
    let block: string[] | null = null;
    let start = 0;
    lines.forEach((line, i) => {
      if (/^@\w+/.test(line)) inExample = line.startsWith('@example');
      if (!inExample) return;
      if (block == null && /^```(ts|typescript)\s*$/.test(line)) {
        block = [];
        start = firstLine + i + 1;
      } else if (block != null && /^```\s*$/.test(line)) {
        out.push({ file, line: start, code: block.join('\n') });
        block = null;
      } else if (block != null) block.push(line);
    });
  }
  return out;
}

/** Every name (value or type) lib/node.ts exports, as the checker sees them. */
function nodeEntryNames(program: ts.Program): string[] {
  const checker = program.getTypeChecker();
  const entry = program.getSourceFile(path.join(LIB, 'node.ts'));
  if (entry == null) throw new Error('lib/node.ts is not in the program');
  const symbol = checker.getSymbolAtLocation(entry);
  if (symbol == null) throw new Error('lib/node.ts has no module symbol');
  return checker.getExportsOfModule(symbol).map((s) => s.getName());
}

describe('doc examples: every @example in lib/ type-checks', function () {
  this.timeout(300000);
  const examples = tsFiles().flatMap((file) => docExamples(file, fs.readFileSync(file, 'utf8')));

  it('finds the examples of the main entry points', function () {
    const where = examples.map((e) => path.relative(LIB, e.file));
    for (const file of ['moe/soft-moe.ts', 'moe/layers.ts', 'vit/vit.ts', 'train/trainer.ts', 'train/adam.ts'])
      expect(where).to.include(file);
  });

  it('compiles every example against the Node entry', function () {
    const configPath = path.join(LIB, '..', 'tsconfig.json');
    const config = ts.parseJsonConfigFileContent(
      ts.readConfigFile(configPath, ts.sys.readFile).config,
      ts.sys,
      path.dirname(configPath),
    );
    const options: ts.CompilerOptions = {
      ...config.options,
      noEmit: true,
      noUnusedLocals: false,
      noUnusedParameters: false,
    };
    const names = nodeEntryNames(ts.createProgram([path.join(LIB, 'node.ts')], options));
    const dir = path.join(LIB, '..', 'build', 'doc-examples');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    // The package exports `tf` itself (lib/backend.ts), so examples see the library's tfjs.
    expect(names).to.include('tf');
    const header = `import { ${names.join(', ')} } from '../../lib/node.js';\nvoid tf;\n\n`;
    const files = examples.map((e, i) => {
      const file = path.join(dir, `example-${i}.ts`);
      fs.writeFileSync(file, `${header}export async function example(): Promise<void> {\n${e.code}\n}\n`);
      return file;
    });
    const program = ts.createProgram(files, options);
    const headerLines = header.split('\n').length;
    const errors = ts.getPreEmitDiagnostics(program).flatMap((d) => {
      const index = d.file ? files.indexOf(d.file.fileName) : -1;
      if (index < 0) return [];
      const e = examples[index];
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return [
        `${path.relative(process.cwd(), e.file)}:${e.line + line - headerLines}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      ];
    });
    expect(errors, errors.join('\n')).to.deep.equal([]);
  });
});
