// Static import graph of lib/: every `import … from`, `export … from`, side-effect `import '…'`
// and `import('…')` specifier of a TypeScript file, comments stripped first.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LIB = path.resolve(import.meta.dirname, '../../lib');

/** Every .ts file under `dir`, as absolute paths. */
export function tsFiles(dir: string = LIB): string[] {
  const found: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    // lib/jupyterlab/ (the JupyterLab app) keeps its own npm packages and build: not library code.
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'build') found.push(...tsFiles(file));
    else if (e.isFile() && e.name.endsWith('.ts')) found.push(file);
  }
  return found.sort();
}

/** Source without comments (string contents kept), so commented-out imports do not count. */
export function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** The module specifiers a source text imports or re-exports. */
export function importSpecifiers(source: string): string[] {
  const text = stripComments(source);
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;'"`]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1]);
  return found;
}

/**
 * The specifiers a source needs at run time: as importSpecifiers, less `import type …` and
 * `export type …` declarations, which TypeScript erases.
 */
export function runtimeImportSpecifiers(source: string): string[] {
  return importSpecifiers(stripComments(source).replace(/\b(?:import|export)\s+type\s[^;]*;/g, ''));
}

/** The lib/ file a relative specifier of `from` names (.js → .ts), or null for a package. */
export function resolveLocal(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return path.resolve(path.dirname(from), specifier).replace(/\.js$/, '.ts');
}
