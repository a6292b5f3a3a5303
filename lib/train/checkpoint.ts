/**
 * Checkpoint files: named float32 tensors plus a JSON header, protected by a SHA-256 checksum.
 *
 * Layout (all integers little-endian):
 *   bytes 0–7     magic "SMOECKPT"
 *   bytes 8–11    format version (uint32, currently 1)
 *   bytes 12–15   header length H in bytes (uint32)
 *   next H bytes  header, UTF-8 JSON: {meta, tensors: [{name, shape, offset, length}], payloadBytes}
 *   payload       every tensor's float32 values (little-endian), at `offset` bytes into the payload
 *   last 32 bytes SHA-256 of everything before them
 * Values are stored bit for bit, so a save/load round trip is exact. A file is written to a
 * temporary name and renamed, so a crash never leaves a half-written checkpoint under the name.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { fileError, writeFileAtomic } from './file-safety.js';
import type { Trainer, TrainerCheckpointMeta } from './trainer.js';

/** The first 8 bytes of every checkpoint file. */
export const CHECKPOINT_MAGIC = 'SMOECKPT';
/** Format version this library writes and reads. */
export const CHECKPOINT_VERSION = 1;
const PREFIX_BYTES = 16;
const CHECKSUM_BYTES = 32;

/** A tensor as a checkpoint file stores it: shape and float32 values. */
export interface StoredTensor {
  /** Shape of the tensor. */
  shape: number[];
  /** Values, row-major. */
  data: Float32Array;
}

/** What a checkpoint holds: a JSON-serialisable `meta` and named tensors. */
export interface CheckpointContents<Meta = unknown> {
  /** JSON meta (for a trainer: {@link TrainerCheckpointMeta}). */
  meta: Meta;
  /** Tensors by name. */
  tensors: Record<string, StoredTensor>;
}

interface HeaderEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}
interface Header {
  meta: unknown;
  tensors: HeaderEntry[];
  payloadBytes: number;
}

function checkLittleEndian(): void {
  if (os.endianness() !== 'LE')
    throw new Error('checkpoints are stored little-endian; this machine is big-endian, which is not supported');
}

/**
 * Encode tensors (read back here, outside any tidy) and JSON meta into the checkpoint bytes.
 *
 * @throws Error if a tensor is not float32.
 */
export async function encodeCheckpoint(
  tensors: Record<string, tf.Tensor | StoredTensor>,
  meta: unknown,
): Promise<Uint8Array> {
  checkLittleEndian();
  const entries: HeaderEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    let data: Float32Array;
    if (t instanceof tf.Tensor) {
      if (t.dtype !== 'float32')
        throw new Error(`checkpoint tensor ${JSON.stringify(name)} must be float32, got ${t.dtype}`);
      data = (await t.data()) as Float32Array;
    } else {
      data = t.data;
    }
    entries.push({ name, shape: [...t.shape], offset, length: data.length });
    chunks.push(data);
    offset += data.length * 4;
  }
  const header: Header = { meta, tensors: entries, payloadBytes: offset };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const total = PREFIX_BYTES + headerBytes.length + offset + CHECKSUM_BYTES;
  const bytes = new Uint8Array(total);
  bytes.set(new TextEncoder().encode(CHECKPOINT_MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  bytes.set(headerBytes, PREFIX_BYTES);
  let at = PREFIX_BYTES + headerBytes.length;
  for (const c of chunks) {
    bytes.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), at);
    at += c.byteLength;
  }
  bytes.set(createHash('sha256').update(bytes.subarray(0, at)).digest(), at);
  return bytes;
}

/**
 * Decode checkpoint bytes; `source` names the file in error messages.
 *
 * @throws Error naming `source` if the bytes are not a checkpoint, truncated, of another format
 * version, or fail the checksum.
 */
export function decodeCheckpoint<Meta = unknown>(bytes: Uint8Array, source = 'checkpoint'): CheckpointContents<Meta> {
  checkLittleEndian();
  const minimum = PREFIX_BYTES + CHECKSUM_BYTES;
  if (bytes.length < minimum)
    throw new Error(
      `${source} is not a checkpoint: ${bytes.length} bytes, fewer than the ${minimum} of an empty one (truncated?)`,
    );
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== CHECKPOINT_MAGIC)
    throw new Error(
      `${source} is not a checkpoint: it starts with ${JSON.stringify(magic)}, expected ${JSON.stringify(CHECKPOINT_MAGIC)}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_VERSION)
    throw new Error(
      `${source} has checkpoint format version ${version}; this library reads version ${CHECKPOINT_VERSION}`,
    );
  const headerLength = view.getUint32(12, true);
  if (PREFIX_BYTES + headerLength + CHECKSUM_BYTES > bytes.length) {
    throw new Error(
      `${source} is truncated: its header alone needs ${PREFIX_BYTES + headerLength + CHECKSUM_BYTES} bytes, the file has ${bytes.length}`,
    );
  }
  let header: Header;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)),
    ) as Header;
  } catch (e) {
    throw new Error(`${source} is corrupted: its header is not valid JSON (${(e as Error).message})`);
  }
  if (header == null || !Array.isArray(header.tensors) || !Number.isInteger(header.payloadBytes)) {
    throw new Error(`${source} is corrupted: its header lacks the tensor list or payload size`);
  }
  const expected = PREFIX_BYTES + headerLength + header.payloadBytes + CHECKSUM_BYTES;
  if (bytes.length !== expected) {
    throw new Error(
      `${source} is ${bytes.length < expected ? 'truncated' : 'corrupted (trailing bytes)'}: expected ${expected} bytes, the file has ${bytes.length}`,
    );
  }
  const body = expected - CHECKSUM_BYTES;
  const digest = createHash('sha256').update(bytes.subarray(0, body)).digest();
  const stored = bytes.subarray(body);
  if (!digest.equals(stored)) {
    throw new Error(
      `${source} is corrupted: SHA-256 ${digest.toString('hex').slice(0, 16)}… does not match the stored ${Buffer.from(stored).toString('hex').slice(0, 16)}…`,
    );
  }
  const payloadStart = PREFIX_BYTES + headerLength;
  const tensors: Record<string, StoredTensor> = {};
  for (const e of header.tensors) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (size !== e.length || e.offset < 0 || e.offset + e.length * 4 > header.payloadBytes) {
      throw new Error(
        `${source} is corrupted: tensor ${JSON.stringify(e.name)} (shape [${e.shape.join(', ')}]) does not fit its payload entry`,
      );
    }
    // Copy into an aligned buffer (the payload offset need not be a multiple of 4).
    const data = new Float32Array(e.length);
    new Uint8Array(data.buffer).set(bytes.subarray(payloadStart + e.offset, payloadStart + e.offset + e.length * 4));
    tensors[e.name] = { shape: e.shape, data };
  }
  return { meta: header.meta as Meta, tensors };
}

/**
 * Write a checkpoint file atomically (temporary file, then rename; the temporary file is removed
 * on any error). Refuses to replace an existing file that is not a checkpoint.
 */
export async function saveCheckpoint(
  path: string,
  tensors: Record<string, tf.Tensor | StoredTensor>,
  meta: unknown,
): Promise<void> {
  await checkReplaceable(path);
  const bytes = await encodeCheckpoint(tensors, meta);
  await writeFileAtomic(path, bytes);
}

/** Throw unless `path` is absent or starts with the checkpoint magic (the program wrote it). */
export async function checkReplaceable(path: string): Promise<void> {
  let head: Buffer;
  try {
    const handle = await fs.open(path, 'r');
    try {
      head = Buffer.alloc(CHECKPOINT_MAGIC.length);
      await handle.read(head, 0, head.length, 0);
    } finally {
      await handle.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fileError('check the existing file', path, e);
  }
  if (head.toString('latin1') !== CHECKPOINT_MAGIC) {
    throw new Error(
      `refusing to overwrite ${path}: it exists and is not a checkpoint (it does not start with ${JSON.stringify(CHECKPOINT_MAGIC)}); remove it or choose another path`,
    );
  }
}

/** Read and verify a checkpoint file. */
export async function readCheckpoint<Meta = unknown>(path: string): Promise<CheckpointContents<Meta>> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    throw new Error(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  return decodeCheckpoint<Meta>(bytes, path);
}

/** Write a trainer's checkpoint (`trainer.checkpointContents()`) to `path`. */
export async function saveTrainerCheckpoint(trainer: Trainer, path: string): Promise<void> {
  const { tensors, meta } = trainer.checkpointContents();
  await saveCheckpoint(path, tensors, meta);
}

/** Read a checkpoint written by `saveTrainerCheckpoint` into `trainer`; returns its meta. */
export async function loadTrainerCheckpoint(trainer: Trainer, path: string): Promise<TrainerCheckpointMeta> {
  return trainer.restoreCheckpoint(await readCheckpoint<TrainerCheckpointMeta>(path), path);
}
