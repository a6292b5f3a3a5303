import { expect } from 'chai';
import { decodeIdx, encodeIdx } from '../../lib/data/idx.js';

/** Bytes written by hand from the IDX spec (yann.lecun.com/exdb/mnist, "FILE FORMATS"). */
function handMadeImages(): Uint8Array {
  return new Uint8Array([
    0x00,
    0x00,
    0x08,
    0x03, // magic 0x00000803: unsigned byte, 3 dims
    0x00,
    0x00,
    0x00,
    0x02, // 2 images
    0x00,
    0x00,
    0x00,
    0x02, // 2 rows
    0x00,
    0x00,
    0x00,
    0x03, // 3 columns
    1,
    2,
    3,
    4,
    5,
    6, //       image 0
    250,
    251,
    252,
    253,
    254,
    255, // image 1
  ]);
}

describe('data/idx: IDX decoding', function () {
  it('decodes a hand-written 3-D file: big-endian sizes, row-major bytes', function () {
    const idx = decodeIdx(handMadeImages(), 3, 'hand');
    expect(idx.shape).to.deep.equal([2, 2, 3]);
    expect(Array.from(idx.data)).to.deep.equal([1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255]);
  });

  it('reads sizes ≥ 256 big-endian (60000 = 0x0000ea60)', function () {
    const bytes = new Uint8Array(8 + 60000);
    bytes.set([0, 0, 8, 1, 0x00, 0x00, 0xea, 0x60]);
    expect(decodeIdx(bytes, 1, 'labels').shape).to.deep.equal([60000]);
  });

  it('encodeIdx writes exactly the hand-written bytes', function () {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255]);
    expect(Array.from(encodeIdx([2, 2, 3], data))).to.deep.equal(Array.from(handMadeImages()));
    expect(() => encodeIdx([2, 2], data)).to.throw(/shape \[2, 2\] holds 4 values, data has 12/);
  });

  it('rejects a wrong magic number, naming the value and the expectation', function () {
    const labels = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 7]);
    expect(() => decodeIdx(labels, 3, 'x.idx')).to.throw(
      /x\.idx: wrong IDX magic number 0x00000801 .*expected 0x00000803 \(unsigned bytes, 3 dimensions\)/,
    );
    const floats = handMadeImages();
    floats[2] = 0x0d;
    expect(() => decodeIdx(floats, 3, 'f')).to.throw(/0x00000d03 \(type 0x0d = float32, 3 dimensions\)/);
    const gz = handMadeImages();
    gz.set([0x1f, 0x8b, 0x08, 0x00]);
    expect(() => decodeIdx(gz, 3, 'g')).to.throw(/wrong IDX magic number 0x1f8b0800/);
  });

  it('rejects truncated files and trailing bytes', function () {
    const full = handMadeImages();
    expect(() => decodeIdx(full.subarray(0, 3), 3, 't')).to.throw(/t: truncated IDX file: 3 bytes, too short/);
    expect(() => decodeIdx(full.subarray(0, 10), 3, 't')).to.throw(
      /truncated IDX file: 10 bytes, the header alone needs 16/,
    );
    expect(() => decodeIdx(full.subarray(0, full.length - 1), 3, 't')).to.throw(
      /truncated IDX file: header says \[2, 2, 3\] = 12 bytes of data, the file holds only 11/,
    );
    const longer = new Uint8Array(full.length + 2);
    longer.set(full);
    expect(() => decodeIdx(longer, 3, 't')).to.throw(/2 bytes after the \[2, 2, 3\] data/);
  });
});
