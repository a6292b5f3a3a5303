/**
 * The assembler and the SIMD kernels on their own, on a private WebAssembly.Memory (no tfjs):
 * every expected value is computed here by a plain JavaScript loop over the same inputs.
 */
import { expect } from 'chai';
import { assemble, i32, sleb, uleb, wasmApi, WasmFunction, type WasmMemory } from '../../lib/ops/wasm/wasm-asm.js';
import { GEMM_ACCUMULATE, GEMM_BIAS, instantiateKernels, kernelModuleBytes } from '../../lib/ops/wasm/wasm-kernels.js';

/** A deterministic generator (mulberry32), so that failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ops/wasm-asm: WebAssembly encoding', function () {
  it('encodes LEB128 as the specification and its usual examples', function () {
    // 624485 → E5 8E 26 and −123456 → C0 BB 78 are the worked examples of the LEB128 article
    // (en.wikipedia.org/wiki/LEB128); the others follow from the definition (7 bits per byte).
    expect(uleb(0)).to.deep.equal([0]);
    expect(uleb(127)).to.deep.equal([0x7f]);
    expect(uleb(128)).to.deep.equal([0x80, 0x01]);
    expect(uleb(624485)).to.deep.equal([0xe5, 0x8e, 0x26]);
    expect(sleb(-1)).to.deep.equal([0x7f]);
    expect(sleb(63)).to.deep.equal([0x3f]);
    expect(sleb(64)).to.deep.equal([0xc0, 0x00]);
    expect(sleb(-123456)).to.deep.equal([0xc0, 0xbb, 0x78]);
  });

  it('rejects what LEB128 of a 32-bit immediate cannot hold, naming the value', function () {
    expect(() => uleb(-1)).to.throw(/non-negative integer, got -1/);
    expect(() => uleb(1.5)).to.throw(/got 1.5/);
    expect(() => sleb(2 ** 31)).to.throw(/32-bit integer, got 2147483648/);
  });

  it('assembles a module that validates and runs (a + b·c on i32)', function () {
    const f = new WasmFunction('fma', [i32, i32, i32], [i32]);
    f.get(0).get(1).get(2).i32Mul().i32Add();
    const bytes = assemble([f]);
    const api = wasmApi()!;
    expect(api.validate(bytes)).to.equal(true);
    const memory = new api.Memory({ initial: 1 });
    const inst = new api.Instance(new api.Module(bytes), { env: { memory } });
    expect((inst.exports.fma as (a: number, b: number, c: number) => number)(2, 3, 4)).to.equal(14);
  });

  it('the kernel module validates', function () {
    expect(wasmApi()!.validate(kernelModuleBytes())).to.equal(true);
  });
});

describe('ops/wasm-kernels against plain loops', function () {
  const api = wasmApi()!;
  const memory: WasmMemory = new api.Memory({ initial: 64 });
  const k = instantiateKernels(memory);
  const heap = () => new Float32Array(memory.buffer);
  let top = 64;
  const alloc = (count: number) => {
    const p = top;
    top += 4 * count + 64; // a gap after every buffer, to catch writes past the end
    return p;
  };
  const fill = (p: number, count: number, next: () => number) => {
    const h = heap();
    // Multiples of 1/8 in [−2, 2]: small sums of their products are exact in float32.
    for (let i = 0; i < count; i++) h[p / 4 + i] = Math.round((next() * 4 - 2) * 8) / 8;
  };

  it('gemm: C (+)= op(A)·B (+ bias) for 300 random shapes (K = 0, single rows and columns, odd sizes)', function () {
    const next = rng(1);
    for (let trial = 0; trial < 300; trial++) {
      top = 64;
      const M = 1 + Math.floor(next() * 13);
      const N = 1 + Math.floor(next() * 21);
      const K = Math.floor(next() * 9);
      const transA = next() < 0.5;
      const flags = Math.floor(next() * 4);
      const [a, b, c, bias] = [alloc(M * K), alloc(K * N), alloc(M * N + 1), alloc(N)];
      fill(a, M * K, next);
      fill(b, K * N, next);
      fill(c, M * N, next);
      fill(bias, N, next);
      const h = heap();
      h[c / 4 + M * N] = 12345; // sentinel just past C
      const want = new Float64Array(M * N);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = flags & GEMM_BIAS ? h[bias / 4 + j] : 0;
          for (let q = 0; q < K; q++) s += h[a / 4 + (transA ? q * M + i : i * K + q)] * h[b / 4 + q * N + j];
          if (flags & GEMM_ACCUMULATE) s += h[c / 4 + i * N + j];
          want[i * N + j] = s;
        }
      }
      k.gemm(a, transA ? 4 : 4 * K, transA ? 4 * M : 4, b, 4 * N, c, 4 * N, M, N, K, bias, flags);
      const got = heap();
      for (let i = 0; i < M * N; i++) {
        if (got[c / 4 + i] !== want[i])
          expect.fail(
            `gemm M=${M} N=${N} K=${K} transA=${transA} flags=${flags}: element ${i} is ${got[c / 4 + i]}, expected ${want[i]}`,
          );
      }
      expect(got[c / 4 + M * N], 'sentinel after C').to.equal(12345);
    }
  });

  it('gemmNT: C (+)= A·Bᵀ (+ bias) for 300 random shapes (K % 4 ≠ 0, edge tiles of 1 row and 1 column)', function () {
    const next = rng(5);
    for (let trial = 0; trial < 300; trial++) {
      top = 64;
      const M = 1 + Math.floor(next() * 11);
      const N = 1 + Math.floor(next() * 13);
      const K = Math.floor(next() * 19);
      const flags = Math.floor(next() * 4);
      const [a, b, c, bias] = [alloc(M * K), alloc(N * K), alloc(M * N + 1), alloc(N)];
      fill(a, M * K, next);
      fill(b, N * K, next);
      fill(c, M * N, next);
      fill(bias, N, next);
      const h = heap();
      h[c / 4 + M * N] = 4242;
      const want = new Float64Array(M * N);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = flags & GEMM_BIAS ? h[bias / 4 + j] : 0;
          for (let q = 0; q < K; q++) s += h[a / 4 + i * K + q] * h[b / 4 + j * K + q];
          if (flags & GEMM_ACCUMULATE) s += h[c / 4 + i * N + j];
          want[i * N + j] = s;
        }
      }
      k.gemmNT(a, 4 * K, b, 4 * K, c, 4 * N, M, N, K, bias, flags);
      const got = heap();
      for (let i = 0; i < M * N; i++) {
        if (got[c / 4 + i] !== want[i])
          expect.fail(
            `gemmNT M=${M} N=${N} K=${K} flags=${flags}: element ${i} is ${got[c / 4 + i]}, expected ${want[i]}`,
          );
      }
      expect(got[c / 4 + M * N], 'sentinel after C').to.equal(4242);
    }
  });

  it('l2norm and l2normGrad follow the float64 formulas, any row width', function () {
    const next = rng(6);
    for (const [R, C] of [
      [1, 1],
      [3, 5],
      [7, 128],
      [2, 3],
      [4, 4],
      [5, 9],
    ]) {
      top = 64;
      const [x, y, s, dy, dx] = [alloc(R * C), alloc(R * C + 1), alloc(R + 1), alloc(R * C), alloc(R * C + 1)];
      fill(x, R * C, next);
      fill(dy, R * C, next);
      heap()[x / 4] = 0; // a zero element (and with C = 1, a zero row: only eps keeps s finite)
      k.l2norm(x, y, s, R, C, 1e-6);
      k.l2normGrad(x, s, dy, dx, R, C);
      const h = heap();
      for (let r = 0; r < R; r++) {
        // vmoe normalize: y = x·rsqrt(Σx² + eps); gradient dx = s·(dy − y·Σ y·dy), s = rsqrt(Σx² + eps).
        let ss = 0;
        for (let j = 0; j < C; j++) ss += h[x / 4 + r * C + j] ** 2;
        const sc = 1 / Math.sqrt(ss + 1e-6);
        let dot = 0;
        for (let j = 0; j < C; j++) dot += h[x / 4 + r * C + j] * sc * h[dy / 4 + r * C + j];
        expect(Math.abs(h[s / 4 + r] - sc), `s row ${r}`).to.be.at.most(1e-6 * sc);
        for (let j = 0; j < C; j++) {
          const yy = h[x / 4 + r * C + j] * sc;
          const g = sc * (h[dy / 4 + r * C + j] - yy * dot);
          expect(Math.abs(h[y / 4 + r * C + j] - yy), `y ${R}×${C} (${r}, ${j})`).to.be.at.most(
            1e-6 * (1 + Math.abs(yy)),
          );
          expect(Math.abs(h[dx / 4 + r * C + j] - g), `dx ${R}×${C} (${r}, ${j})`).to.be.at.most(
            1e-5 * (1 + Math.abs(g)) * (1 + sc / 1000),
          );
        }
      }
    }
  });

  it('transpose: exact for 200 random shapes including 1×n, n×1 and sizes not divisible by 4', function () {
    const next = rng(2);
    for (let trial = 0; trial < 200; trial++) {
      top = 64;
      const R = 1 + Math.floor(next() * 70);
      const C = 1 + Math.floor(next() * 70);
      const [src, dst] = [alloc(R * C), alloc(R * C + 1)];
      fill(src, R * C, next);
      heap()[dst / 4 + R * C] = 777;
      k.transpose(src, dst, R, C);
      const h = heap();
      for (let i = 0; i < R; i++) {
        for (let j = 0; j < C; j++) {
          if (h[dst / 4 + j * R + i] !== h[src / 4 + i * C + j])
            expect.fail(`transpose ${R}×${C}: element (${i}, ${j}) wrong`);
        }
      }
      expect(h[dst / 4 + R * C], 'sentinel').to.equal(777);
    }
  });

  it('colsum: column sums in row order, bit-exact against a sequential float32 loop', function () {
    const next = rng(3);
    for (let trial = 0; trial < 100; trial++) {
      top = 64;
      const R = 1 + Math.floor(next() * 40);
      const C = 1 + Math.floor(next() * 40);
      const accumulate = next() < 0.5 ? 1 : 0;
      const [src, dst] = [alloc(R * C), alloc(C + 1)];
      fill(src, R * C, next);
      fill(dst, C, next);
      const h = heap();
      h[dst / 4 + C] = 555;
      const want = new Float32Array(C);
      for (let j = 0; j < C; j++) {
        let t = accumulate ? h[dst / 4 + j] : 0;
        for (let i = 0; i < R; i++) t = Math.fround(t + h[src / 4 + i * C + j]);
        want[j] = t;
      }
      k.colsum(src, dst, R, C, accumulate);
      for (let j = 0; j < C; j++) expect(heap()[dst / 4 + j], `colsum ${R}×${C} column ${j}`).to.equal(want[j]);
      expect(heap()[dst / 4 + C], 'sentinel').to.equal(555);
    }
  });

  it('copyBlocks: [g, n, c] → [n, g, c] moves whole blocks', function () {
    top = 64;
    const [g, n, c] = [5, 7, 3];
    const [src, dst] = [alloc(g * n * c), alloc(g * n * c)];
    fill(src, g * n * c, rng(4));
    k.copyBlocks(src, dst, g, n, n * c * 4, c * 4, c * 4, g * c * 4, c * 4);
    const h = heap();
    for (let x = 0; x < g; x++) {
      for (let y = 0; y < n; y++) {
        for (let z = 0; z < c; z++) expect(h[dst / 4 + (y * g + x) * c + z]).to.equal(h[src / 4 + (x * n + y) * c + z]);
      }
    }
  });

  it('gelu and geluGrad follow the float64 closed form (rel. 1e-5 forward, abs. 1e-5 gradient)', function () {
    top = 64;
    const count = 4096; // whole vectors; the tails are handled in JavaScript (test/ops/fast-wasm)
    const [x, y, s, dy, dx] = [alloc(count), alloc(count), alloc(count), alloc(count), alloc(count)];
    const h = heap();
    // Inputs over [−12, 12] plus the saturating extremes ±200 and ±0.
    for (let i = 0; i < count; i++) {
      h[x / 4 + i] = (i / count - 0.5) * 24;
      h[dy / 4 + i] = 1 - (i % 3) / 2;
    }
    [-200, 200, 0, -0].forEach((v, i) => (h[x / 4 + i] = v));
    k.gelu(x, y, s, count);
    k.geluGrad(x, s, dy, dx, count);
    const c = Math.sqrt(2 / Math.PI);
    const out = heap();
    for (let i = 0; i < count; i++) {
      const v = out[x / 4 + i];
      // gelu(v) = ½v(1 + tanh(w)), w = c(v + 0.044715v³) (flax nn.gelu, approximate=True), in
      // float64 as v·σ(2w) — the same number (½(1 + tanh w) = σ(2w)) without the cancellation of
      // 1 + tanh(w) for w ≪ 0, which in float64 is exactly 0 below w ≈ −19. Derivative:
      // σ(2w) + v·σ(2w)(1 − σ(2w))·2c(1 + 3·0.044715v²).
      const sig = 1 / (1 + Math.exp(-2 * c * (v + 0.044715 * v ** 3)));
      const want = v * sig;
      const dWant = out[dy / 4 + i] * (sig + v * sig * (1 - sig) * 2 * c * (1 + 3 * 0.044715 * v * v));
      expect(Math.abs(out[y / 4 + i] - want), `gelu(${v})`).to.be.at.most(1e-5 * Math.abs(want) + 1e-30);
      expect(Math.abs(out[dx / 4 + i] - dWant), `gelu'(${v})`).to.be.at.most(1e-5);
    }
  });
});
