/**
 * Data maintenance from the command line (npm run data -- <command>):
 *
 *   verify                        check every file in data/manifest.json (sizes, SHA-256, IDX headers)
 *   import <name> <source-dir>    copy a data set's four IDX files into data/<name>/ (gzipping raw ones)
 *   tiny                          cut data/tiny/{mnist,fashion-mnist} from the full sets
 *
 * Options: --data-dir <dir> (default: the project's data/ folder).
 */
import { importDataset, makeTinyDataset, verifyDataDir } from '../data/build.js';
import { datasetInfo } from '../data/datasets.js';
import { defaultDataDir } from '../data/paths.js';

const USAGE = 'usage: npm run data -- verify | import <mnist|fashion-mnist> <source-dir> | tiny  [--data-dir <dir>]';

async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  let dataDir = defaultDataDir();
  const at = args.indexOf('--data-dir');
  if (at >= 0) {
    if (args[at + 1] == null) throw new Error(`--data-dir needs a folder; ${USAGE}`);
    dataDir = args[at + 1];
    args.splice(at, 2);
  }
  const [command, ...rest] = args;
  if (command === 'verify') {
    const t0 = Date.now();
    const files = await verifyDataDir(dataDir, (f) => {
      console.log(
        `ok  ${f.path.padEnd(44)} ${String(f.bytes).padStart(9)} B  [${f.shape.join(', ')}]  sha256 ${f.sha256.slice(0, 16)}…`,
      );
    });
    console.log(`${files.length} files verified in ${((Date.now() - t0) / 1000).toFixed(1)} s (${dataDir})`);
  } else if (command === 'import') {
    const [name, sourceDir] = rest;
    if (name !== 'mnist' && name !== 'fashion-mnist')
      throw new Error(`import: data set must be mnist or fashion-mnist, got ${JSON.stringify(name)}; ${USAGE}`);
    if (sourceDir == null) throw new Error(`import: missing <source-dir>; ${USAGE}`);
    const written = await importDataset(datasetInfo(name).name, sourceDir, dataDir);
    for (const p of written) console.log(`wrote ${p}`);
  } else if (command === 'tiny') {
    for (const parent of ['mnist', 'fashion-mnist'] as const) {
      for (const p of await makeTinyDataset(parent, dataDir)) console.log(`wrote ${p}`);
    }
  } else {
    throw new Error(`unknown command ${JSON.stringify(command)}; ${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
