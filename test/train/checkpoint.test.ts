import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { decodeCheckpoint, encodeCheckpoint, readCheckpoint, saveCheckpoint } from '../../lib/train/checkpoint.js';

/** Float32 bit patterns, to compare exactly (NaN, −0 included). */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

describe('train/checkpoint: file format', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-ckpt-'));
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  const special = new Float32Array([0, -0, 1e-45, -3.4028234663852886e38, NaN, Infinity, 1 / 3, -7.25]);
  const meta = { kind: 'test', step: 7, nested: { list: [1, 2, 3] } };

  it('a round trip is bit-exact (NaN, −0, denormals included) and keeps meta', async function () {
    const t = tf.tensor2d(special, [2, 4]);
    const path = join(dir, 'a.ckpt');
    await saveCheckpoint(
      path,
      { 'w/one': t, empty: { shape: [0], data: new Float32Array(0) }, s: tf.scalar(2.5) },
      meta,
    );
    const back = await readCheckpoint(path);
    expect(back.meta).to.deep.equal(meta);
    expect(back.tensors['w/one'].shape).to.deep.equal([2, 4]);
    expect(bits(back.tensors['w/one'].data)).to.deep.equal(bits(special));
    expect(back.tensors.empty.data.length).to.equal(0);
    expect(Array.from(back.tensors.s.data)).to.deep.equal([2.5]);
    expect(back.tensors.s.shape).to.deep.equal([]);
    t.dispose();
  });

  it('a flipped byte anywhere is reported as corruption', async function () {
    const bytes = await encodeCheckpoint({ w: { shape: [8], data: special } }, meta);
    const payloadByte = bytes.length - 32 - 5; // inside the float payload
    const copy = bytes.slice();
    copy[payloadByte] ^= 0x40;
    expect(() => decodeCheckpoint(copy, 'x.ckpt')).to.throw(/x\.ckpt is corrupted: SHA-256 .* does not match/);
    const header = bytes.slice();
    header[20] = 0x7b; // a '{' inside the JSON header: invalid JSON or a checksum mismatch
    expect(() => decodeCheckpoint(header, 'x.ckpt')).to.throw(/x\.ckpt is corrupted/);
  });

  it('a truncated file and a foreign file give clear errors', async function () {
    const path = join(dir, 'b.ckpt');
    await saveCheckpoint(path, { w: { shape: [8], data: special } }, meta);
    const size = readFileSync(path).length;
    truncateSync(path, size - 10);
    let error: Error | null = null;
    try {
      await readCheckpoint(path);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(
      new RegExp(`b\\.ckpt is truncated: expected ${size} bytes, the file has ${size - 10}`),
    );
    writeFileSync(path, '{"not": "a checkpoint, but long enough to have a header"}');
    error = null;
    try {
      await readCheckpoint(path);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(/b\.ckpt is not a checkpoint: it starts with ".*not.*", expected "SMOECKPT"/);
    error = null;
    try {
      await readCheckpoint(join(dir, 'missing.ckpt'));
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(/cannot read checkpoint .*missing\.ckpt/);
  });
});
