/**
 * Results files: one JSON document per training run under data/results/, recording what was run
 * (full config, backend, machine, versions, git commit), what happened (loss and accuracy
 * curves, per-step wall time) and what came out (validation and test accuracy, parameters,
 * FLOPs). Finished results are never overwritten silently.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { findProjectRoot } from '../data/paths.js';
import { fileError, writeFileAtomicSync } from './file-safety.js';

/** The machine a run or benchmark ran on, recorded in results files. */
export interface MachineInfo {
  /** Operating system type and release. */
  os: string;
  /** Node's `os.platform()`, e.g. 'linux'. */
  platform: string;
  /** CPU architecture, e.g. 'x64'. */
  arch: string;
  /** Model name of the first CPU. */
  cpuModel: string;
  /** Logical CPU count. */
  cores: number;
  /** Total memory in GiB, one decimal. */
  memoryGB: number;
  /** Load average (1, 5, 15 min) when the run started: other work shares the cores. */
  loadAverage: number[];
}

/** This machine: OS, CPU, cores, memory and the current load average. */
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

/** Versions of the software a result was produced with. */
export interface Versions {
  /** Node.js version. */
  node: string;
  /** TensorFlow.js version. */
  tfjs: string;
  /** Version of the installed wasm backend, or null when not found. */
  tfjsBackendWasm: string | null;
  /** Optional dependencies (null when not installed). */
  tfjsBackendWebgpu?: string | null;
  /** Version of the `webgpu` (Dawn) package. */
  webgpu?: string | null;
  /** This package's version. */
  package: string;
}

/** Versions of Node, tfjs, the wasm backend and this package. */
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

/** The git state of the project when a run started. */
export interface GitInfo {
  /** HEAD commit hash. */
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
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=all', '--', '.'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const lines = status.split('\n').filter((l) => l.length > 3);
    return {
      commit,
      dirty: lines.some((l) => !l.startsWith('??')),
      uncommittedLibraryFiles: lines
        .map((l) => l.slice(3))
        .filter((f) => f.startsWith('lib/'))
        .sort(),
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

/** The `kind` of a results file written by the training command line. */
export const RESULTS_KIND = 'soft-moe-workbook/train-results';

/** What is at a path where a results file would go. */
export type ResultsFileState =
  | {
      /** No file at the path. */
      kind: 'absent';
    }
  /** Not a results document this project wrote (any other file, unreadable or not JSON). */
  | {
      /** A file this project did not write. */
      kind: 'foreign';
      /** Why it is not one of ours. */
      reason: string;
    }
  | {
      /** A results document this project wrote. */
      kind: 'ours';
      /** Its status ('finished', 'running', …). */
      status: string;
      /** The parsed document. */
      doc: Record<string, unknown>;
    };

/**
 * Whether `doc` is a results document written by this project: `kind` 'soft-moe-workbook/…',
 * or (files written before `kind` existed) a string `status` and a `command` starting `npm run `.
 */
function isOurDocument(doc: unknown): doc is Record<string, unknown> & { status: string } {
  if (doc == null || typeof doc !== 'object' || Array.isArray(doc)) return false;
  const d = doc as Record<string, unknown>;
  if (typeof d.status !== 'string') return false;
  if (typeof d.kind === 'string') return d.kind.startsWith('soft-moe-workbook/');
  return typeof d.command === 'string' && d.command.startsWith('npm run ');
}

/** Inspect what is at `path`: nothing, a results file this project wrote, or something else. */
export function inspectResultsFile(path: string): ResultsFileState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'absent' };
    return {
      kind: 'foreign',
      reason: code === 'EISDIR' ? 'it is a folder' : `it cannot be read (${(e as Error).message})`,
    };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { kind: 'foreign', reason: 'it is not JSON' };
  }
  if (!isOurDocument(doc))
    return { kind: 'foreign', reason: 'it is not a results file written by this project (no status/kind/command)' };
  return { kind: 'ours', status: doc.status, doc };
}

/** Status of an existing results file: its status, 'foreign' for another file, or null when absent. */
export function resultStatus(path: string): string | null {
  const state = inspectResultsFile(path);
  return state.kind === 'absent' ? null : state.kind === 'foreign' ? 'foreign' : state.status;
}

/** Options of {@link writeResults}. */
export interface WriteResultsOptions {
  /** Replace a finished result. Default false. Never replaces a file this project did not write. */
  force?: boolean;
  /**
   * The run id (`runId` field) the file on disk must carry: a run that has written its file once
   * passes its own id, so it never replaces a file another run wrote meanwhile.
   */
  owner?: string;
}

/**
 * Write a results document atomically. Refuses to replace a file this project did not write
 * (whatever `force` says), a finished result unless `force`, and, with `owner`, a file whose
 * `runId` is not `owner`.
 */
export function writeResults(
  path: string,
  doc: { status: string } & Record<string, unknown>,
  options: WriteResultsOptions = {},
): void {
  const state = inspectResultsFile(path);
  if (state.kind === 'foreign')
    throw new Error(`refusing to overwrite ${path}: ${state.reason}; remove it or write elsewhere`);
  if (state.kind === 'ours') {
    if (options.owner != null && state.doc.runId !== options.owner) {
      throw new Error(
        `refusing to overwrite ${path}: another run (runId ${JSON.stringify(state.doc.runId ?? null)}) wrote it after this one started`,
      );
    }
    if (!options.force && state.status === 'finished' && options.owner == null) {
      throw new Error(`${path} holds a finished result; pass --force (force: true) to overwrite it`);
    }
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw fileError('create the folder of', path, e);
  }
  writeFileAtomicSync(path, JSON.stringify(doc, null, 1) + '\n');
}

/** JSON with object keys sorted at every level (a canonical form for hashing). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v == null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, (v as Record<string, unknown>)[k]]),
    );
  });
}

/** SHA-256 (hex, first 16 digits) of the canonical JSON of a run's settings. */
export function settingsHash(settings: unknown): string {
  return createHash('sha256').update(canonicalJson(settings)).digest('hex').slice(0, 16);
}

/** Flatten an object to dotted paths → leaf values (arrays are leaves). */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value != null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) {
    out.set(prefix, value);
  }
  return out;
}

/**
 * Settings that differ between a stored run and a new one, as "key: stored → now" lines.
 * `ignoreMissing`: skip keys the stored settings do not have (files written before a setting existed).
 */
export function settingsDifferences(
  stored: unknown,
  now: unknown,
  options: { ignoreMissing?: boolean } = {},
): string[] {
  const a = flatten(stored, '', new Map());
  const b = flatten(now, '', new Map());
  const out: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (!a.has(key) && options.ignoreMissing) continue;
    const [x, y] = [a.get(key), b.get(key)];
    if (canonicalJson(x) !== canonicalJson(y))
      out.push(
        `${key}: ${a.has(key) ? JSON.stringify(x) : '(not set)'} in the file, ${b.has(key) ? JSON.stringify(y) : '(not set)'} now`,
      );
  }
  return out;
}
