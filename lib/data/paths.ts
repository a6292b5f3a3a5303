/**
 * Where the project's files are. The library runs from lib/ (TypeScript through tsx, tests) and
 * from dist/lib/ (built JavaScript, imported by the notebooks), so paths are found by walking up
 * from this module to the folder whose package.json names this project — never from the
 * current working directory, which differs between mocha, tslab and the command line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `name` field of this project's package.json. */
export const PROJECT_NAME = 'soft-moe-workbook';

/**
 * The nearest folder at or above `startDir` that holds this project's package.json
 * (default: start from this module's own folder).
 */
export function findProjectRoot(startDir: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(startDir);
  for (;;) {
    const pkgPath = join(dir, 'package.json');
    if (existsSync(pkgPath)) {
      try {
        const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { name?: unknown };
        if (pkg.name === PROJECT_NAME) return dir;
      } catch {
        // an unreadable package.json belongs to something else: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `cannot find the project root: no package.json named "${PROJECT_NAME}" at or above ${resolve(startDir)}; ` +
          'pass dataDir explicitly',
      );
    }
    dir = parent;
  }
}

/** The project's data folder: <project root>/data. */
export function defaultDataDir(): string {
  return join(findProjectRoot(), 'data');
}
