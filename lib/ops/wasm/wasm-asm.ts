/**
 * A tiny WebAssembly assembler: enough to write the SIMD kernels of lib/ops/wasm/wasm-kernels.ts as
 * TypeScript that emits bytes, with no compiler toolchain at build or run time.
 *
 * Encoding per the WebAssembly core specification 2.0 (https://webassembly.github.io/spec/core/):
 * module preamble, type/import/function/export/code sections (§5.5), LEB128 integers (§5.2.2),
 * the 0xFD prefix for 128-bit SIMD instructions and 0xFC for bulk memory (§5.4.8, §5.4.6).
 * The module imports one memory (`env.memory`): the kernels run on the tfjs wasm backend's own
 * heap, so tensors are read and written where they live, without copies.
 *
 * Only what the kernels use is here; each opcode is named as in the specification's text format.
 */

/**
 * The parts of the WebAssembly JavaScript API used here. The project compiles against ES2022
 * without DOM typings, which do not declare `WebAssembly`; Node provides it at run time.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}

/** The global WebAssembly object, or null when the runtime has none. */
export function wasmApi(): WasmApi | null {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly ?? null;
}

/** Whether a value is a WebAssembly.Memory. */
export function isWasmMemory(value: unknown): value is WasmMemory {
  const api = wasmApi();
  return api != null && value instanceof (api.Memory as unknown as new () => object);
}

/** Value types (§5.3.1). */
export const i32 = 0x7f;
export const f32 = 0x7d;
export const v128 = 0x7b;
export type ValType = typeof i32 | typeof f32 | typeof v128;

/** Unsigned LEB128 (§5.2.2). */
export function uleb(value: number): number[] {
  if (!Number.isInteger(value) || value < 0) throw new Error(`uleb: expected a non-negative integer, got ${value}`);
  const out: number[] = [];
  let n = value;
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer (§5.2.2). */
export function sleb(value: number): number[] {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)
    throw new Error(`sleb: expected a 32-bit integer, got ${value}`);
  const out: number[] = [];
  let n = value | 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Block type "no result" (§5.4.1). */
const EMPTY = 0x40;

/** Memory-access alignment exponents (log2 of bytes). */
const ALIGN_F32 = 2;
const ALIGN_V128 = 4;

/**
 * One function under construction. Parameters are locals 0…p−1; `local(type)` adds more.
 * Each emitter appends one instruction and returns `this`, so code reads in stack order:
 * `f.get(a).get(b).i32Add().set(c)` is `c = a + b`.
 */
export class WasmFunction {
  readonly code: number[] = [];
  private readonly extraLocals: ValType[] = [];

  constructor(
    readonly exportName: string,
    readonly params: ValType[],
    readonly results: ValType[] = [],
  ) {}

  /** A new local of the given type; returns its index. */
  local(type: ValType): number {
    this.extraLocals.push(type);
    return this.params.length + this.extraLocals.length - 1;
  }

  get localTypes(): readonly ValType[] {
    return this.extraLocals;
  }

  private emit(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  // Variables (§5.4.4).
  get(index: number): this {
    return this.emit(0x20, ...uleb(index));
  }
  set(index: number): this {
    return this.emit(0x21, ...uleb(index));
  }
  tee(index: number): this {
    return this.emit(0x22, ...uleb(index));
  }

  // Control (§5.4.1). Branch depths count enclosing blocks/loops from the innermost (0).
  block(): this {
    return this.emit(0x02, EMPTY);
  }
  loop(): this {
    return this.emit(0x03, EMPTY);
  }
  if(): this {
    return this.emit(0x04, EMPTY);
  }
  else(): this {
    return this.emit(0x05);
  }
  end(): this {
    return this.emit(0x0b);
  }
  br(depth: number): this {
    return this.emit(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.emit(0x0d, ...uleb(depth));
  }
  return(): this {
    return this.emit(0x0f);
  }
  drop(): this {
    return this.emit(0x1a);
  }

  // i32 arithmetic (§5.4.7).
  i32Const(value: number): this {
    return this.emit(0x41, ...sleb(value));
  }
  i32Eqz(): this {
    return this.emit(0x45);
  }
  i32Eq(): this {
    return this.emit(0x46);
  }
  i32Ne(): this {
    return this.emit(0x47);
  }
  i32LtU(): this {
    return this.emit(0x49);
  }
  i32GtU(): this {
    return this.emit(0x4b);
  }
  i32LeU(): this {
    return this.emit(0x4d);
  }
  i32GeU(): this {
    return this.emit(0x4f);
  }
  i32Add(): this {
    return this.emit(0x6a);
  }
  i32Sub(): this {
    return this.emit(0x6b);
  }
  i32Mul(): this {
    return this.emit(0x6c);
  }
  i32DivU(): this {
    return this.emit(0x6e);
  }
  i32RemU(): this {
    return this.emit(0x70);
  }
  i32And(): this {
    return this.emit(0x71);
  }
  i32Shl(): this {
    return this.emit(0x74);
  }

  // f32 scalar (§5.4.6, §5.4.7). `offset` is a constant byte offset added to the address.
  f32Load(offset = 0): this {
    return this.emit(0x2a, ALIGN_F32, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.emit(0x38, ALIGN_F32, ...uleb(offset));
  }
  f32Const(value: number): this {
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    return this.emit(0x43, ...bytes);
  }
  f32Add(): this {
    return this.emit(0x92);
  }
  f32Sub(): this {
    return this.emit(0x93);
  }
  f32Mul(): this {
    return this.emit(0x94);
  }
  f32Div(): this {
    return this.emit(0x95);
  }
  /** f32.convert_i32_u. */
  f32ConvertI32U(): this {
    return this.emit(0xb3);
  }
  f32Sqrt(): this {
    return this.emit(0x91);
  }
  i32Load(offset = 0): this {
    return this.emit(0x28, ALIGN_F32, ...uleb(offset));
  }
  i32Store(offset = 0): this {
    return this.emit(0x36, ALIGN_F32, ...uleb(offset));
  }

  // Bulk memory (§5.4.6, 0xFC prefix): memory.copy dst src n.
  memoryCopy(): this {
    return this.emit(0xfc, ...uleb(10), 0x00, 0x00);
  }

  // 128-bit SIMD (§5.4.8, 0xFD prefix). Loads and stores take an alignment hint and an offset.
  private simd(op: number, ...imm: number[]): this {
    return this.emit(0xfd, ...uleb(op), ...imm);
  }
  v128Load(offset = 0): this {
    return this.simd(0x00, ALIGN_V128, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, ALIGN_F32, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, ALIGN_V128, ...uleb(offset));
  }
  v128Zero(): this {
    return this.simd(0x0c, ...new Array<number>(16).fill(0));
  }
  /** i8x16.shuffle with lane indices given as 32-bit lanes (0–3 first operand, 4–7 second). */
  shuffle32(lanes: [number, number, number, number]): this {
    const bytes = lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
    return this.simd(0x0d, ...bytes);
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  f32x4ReplaceLane(lane: number): this {
    return this.simd(0x20, lane);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  f32x4Div(): this {
    return this.simd(0xe7);
  }
  f32x4Min(): this {
    return this.simd(0xe8);
  }
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  /** f32x4.pmin: b < a ? b : a per lane (one minps on x86; f32x4.min needs a NaN-safe sequence). */
  f32x4Pmin(): this {
    return this.simd(0xea);
  }
  /** f32x4.pmax: a < b ? b : a per lane (one maxps on x86). */
  f32x4Pmax(): this {
    return this.simd(0xeb);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  /** i32x4.trunc_sat_f32x4_s: round toward zero, saturating. */
  i32x4TruncSatF32x4S(): this {
    return this.simd(0xf8);
  }
  /** f32x4.convert_i32x4_s. */
  f32x4ConvertI32x4S(): this {
    return this.simd(0xfa);
  }
  /** f32x4.floor. */
  f32x4Floor(): this {
    return this.simd(0x68);
  }
  i32x4Splat(): this {
    return this.simd(0x11);
  }
}

/**
 * Assemble a module that imports `env.memory` and exports each function under its name.
 * Returns the bytes; `WebAssembly.validate` them before instantiating.
 */
export function assemble(functions: WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vector(f.params.map((t) => [t])), ...vector(f.results.map((t) => [t]))]);
  // Import: module "env", field "memory", kind memory (0x02), limits {min 0, no max} (§5.5.5).
  const imports = vector([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]]);
  const funcs = vector(functions.map((_, i) => uleb(i)));
  const exports = vector(functions.map((f, i) => [...name(f.exportName), 0x00, ...uleb(i)]));
  const codes = vector(
    functions.map((f) => {
      // Locals are declared one entry per local (count 1, type): simple and unambiguous.
      const locals = vector(f.localTypes.map((t) => [1, t]));
      const body = [...locals, ...f.code, 0x0b];
      return [...uleb(body.length), ...body];
    }),
  );
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, codes),
  ];
  return new Uint8Array(bytes);
}
