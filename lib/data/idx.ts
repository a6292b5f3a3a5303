/**
 * The IDX file format of MNIST (LeCun & Cortes, yann.lecun.com/exdb/mnist, "FILE FORMATS"),
 * also used by Fashion-MNIST:
 *
 *   bytes 0–1   0x00 0x00
 *   byte  2     data type (0x08 = unsigned byte, the only one these data sets use)
 *   byte  3     number of dimensions N
 *   then N big-endian uint32 sizes, then prod(sizes) values in row-major (C) order.
 *
 * So an image file starts with 0x00000803 [count, rows, cols], a label file with
 * 0x00000801 [count].
 */

/** The IDX type code for unsigned bytes. */
export const IDX_UBYTE = 0x08;

const IDX_TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** A decoded IDX file of unsigned bytes. */
export interface IdxArray {
  /** Sizes of each dimension, e.g. [60000, 28, 28]. */
  shape: number[];
  /** The values, row-major; a view into the decoded buffer (not a copy). */
  data: Uint8Array;
}

/** The magic number of an unsigned-byte IDX file with `dims` dimensions. */
export function idxMagic(dims: number): number {
  return (IDX_UBYTE << 8) | dims;
}

function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Decode an unsigned-byte IDX buffer with exactly `expectDims` dimensions.
 * `source` names the file in error messages. Throws on a wrong magic number, a short header,
 * a truncated body or trailing bytes.
 *
 * @throws Error if the bytes are truncated or the magic number, element type or shape is wrong.
 */
export function decodeIdx(bytes: Uint8Array, expectDims: number, source: string): IdxArray {
  const want = idxMagic(expectDims);
  const what = `unsigned bytes, ${expectDims} dimension${expectDims === 1 ? '' : 's'}`;
  if (bytes.length < 4) {
    throw new Error(`${source}: truncated IDX file: ${bytes.length} bytes, too short for the 4-byte magic number`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== want) {
    const type = bytes[2];
    const typeName = IDX_TYPE_NAMES[type] ?? 'unknown type';
    throw new Error(
      `${source}: wrong IDX magic number ${hex32(magic)} (type 0x${type.toString(16).padStart(2, '0')} = ${typeName}, ` +
        `${bytes[3]} dimensions); expected ${hex32(want)} (${what})`,
    );
  }
  const headerBytes = 4 + 4 * expectDims;
  if (bytes.length < headerBytes) {
    throw new Error(`${source}: truncated IDX file: ${bytes.length} bytes, the header alone needs ${headerBytes}`);
  }
  const shape: number[] = [];
  for (let i = 0; i < expectDims; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const bodyBytes = shape.reduce((a, b) => a * b, 1);
  const have = bytes.length - headerBytes;
  if (have < bodyBytes) {
    throw new Error(
      `${source}: truncated IDX file: header says [${shape.join(', ')}] = ${bodyBytes} bytes of data, ` +
        `the file holds only ${have}`,
    );
  }
  if (have > bodyBytes) {
    throw new Error(
      `${source}: IDX file has ${have - bodyBytes} bytes after the [${shape.join(', ')}] data it declares`,
    );
  }
  return { shape, data: bytes.subarray(headerBytes) };
}

/**
 * Encode unsigned bytes as an IDX buffer (used to write the tiny data set and test fixtures).
 *
 * @throws Error if `data` does not hold exactly the values `shape` says.
 */
export function encodeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new Error(`encodeIdx: shape [${shape.join(', ')}] holds ${size} values, data has ${data.length}`);
  }
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, idxMagic(shape.length), false);
  shape.forEach((s, i) => view.setUint32(4 + 4 * i, s, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}
