/**
 * Results files: one JSON document per training run under data/results/, recording what was run
 * (full config, backend, machine, versions, git commit), what happened (loss and accuracy
 * curves, per-step wall time) and what came out (validation and test accuracy, parameters,
 * FLOPs). Finished results are never overwritten silently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { findProjectRoot } from '../data/paths.js';

export interface MachineInfo {
  os: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cores: number;
  memoryGB: number;
  /** Load average (1, 5, 15 min) when the run started: other work shares the cores. */
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()}`,
    platform: os.platform(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export interface Versions {
  node: string;
  tfjs: string;
  tfjsBackendWasm: string | null;
  /** Optional dependencies (null when not installed). */
  tfjsBackendWebgpu?: string | null;
  webgpu?: string | null;
  package: string;
}

export function versions(): Versions {
  const root = findProjectRoot();
  const readVersion = (path: string): string | null => {
    try {
      return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
    } catch {
      return null;
    }
  };
  return {
    node: process.version,
    tfjs: tf.version.tfjs,
    tfjsBackendWasm: readVersion(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'package.json')),
    tfjsBackendWebgpu: readVersion(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-webgpu', 'package.json')),
    webgpu: readVersion(join(root, 'node_modules', 'webgpu', 'package.json')),
    package: readVersion(join(root, 'package.json')) ?? 'unknown',
  };
}

export interface GitInfo {
  commit: string;
  /** Whether tracked files differed from the commit when the run started. */
  dirty: boolean;
  /** Library files (lib/) modified or not yet committed when the run started (`git status`). */
  uncommittedLibraryFiles: string[];
}

/** The project's git commit, or null outside a git checkout. */
export function gitInfo(): GitInfo | null {
  const cwd = findProjectRoot();
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=all', '--', '.'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = status.split('\n').filter((l) => l.length > 3);
    return {
      commit,
      dirty: lines.some((l) => !l.startsWith('??')),
      uncommittedLibraryFiles: lines.map((l) => l.slice(3)).filter((f) => f.startsWith('lib/')).sort(),
    };
  } catch {
    return null;
  }
}

/** The median of a list of numbers (NaN for an empty list). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The folder of results files: <project root>/data/results. */
export function defaultResultsDir(): string {
  return join(findProjectRoot(), 'data', 'results');
}

/** Status of an existing results file: 'finished', another status, or null when absent/unreadable. */
export function resultStatus(path: string): string | null {
  if (!existsSync(path)) return null;
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { status?: unknown };
    return typeof doc.status === 'string' ? doc.status : 'unknown';
  } catch {
    return 'unreadable';
  }
}

/**
 * Write a results document (atomically). Refuses to replace a file whose status is 'finished'
 * unless `force` is set.
 */
export function writeResults(path: string, doc: { status: string } & Record<string, unknown>, options: { force?: boolean } = {}): void {
  if (!options.force && resultStatus(path) === 'finished') {
    throw new Error(`${path} holds a finished result; pass --force (force: true) to overwrite it`);
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc, null, 1) + '\n');
  renameSync(tmp, path);
}
