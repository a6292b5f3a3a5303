/**
 * WebAssembly SIMD kernels for the hot paths of the MoE layers on the tfjs wasm backend:
 * a matrix product that reads its operands where they lie (any strides for the left operand,
 * rows for the right one) with an optional bias row and accumulation, a 4×4-blocked transpose,
 * a strided block copy and a column sum. They are generated as bytes by ./wasm-asm.ts and
 * run on the backend's heap (./fast-wasm.ts binds them to tensors).
 *
 * Why: on tfjs-backend-wasm 4.22 only a 2-D, non-transposed matMul reaches XNNPACK, and even
 * that one repacks its right operand on every call (more time than the product itself when A has
 * ~32 rows); batched products run a scalar loop and transposes cost several ns per element
 * (`npm run bench` measures these; data/results/bench/). The product below needs no packing: its micro-kernel keeps a 4×8 block
 * of C in eight v128 accumulators and, for each k, broadcasts one element of each of 4 rows of A
 * (`v128.load32_splat`, so A may be read with any strides, e.g. transposed) and multiplies two
 * 4-wide vectors of row k of B — the "splat" GEMM micro-kernel of XNNPACK's wasmsimd kernels,
 * applied to unpacked B (its speed against XNNPACK: `npm run bench`, data/results/bench/).
 *
 * All pointers, strides and sizes passed to the kernels are in bytes unless named as counts.
 */
import { assemble, f32, i32, v128, WasmFunction, wasmApi, type WasmMemory } from './wasm-asm.js';
import { GELU_C, GELU_CUBIC } from '../gelu-constants.js';

/** Flags of `gemm`. */
export const GEMM_BIAS = 1;
export const GEMM_ACCUMULATE = 2;

/**
 * gemm(a, sAi, sAk, b, ldb, c, ldc, M, N, K, bias, flags):
 *   C[i, j] (+)= Σ_k A[i, k]·B[k, j] (+ bias[j]),  0 ≤ i < M, 0 ≤ j < N, 0 ≤ k < K,
 * with A[i, k] at a + i·sAi + k·sAk, B[k, j] at b + k·ldb + 4j, C[i, j] at c + i·ldc + 4j,
 * bias[j] at bias + 4j (read when flags & GEMM_BIAS), and C added to when flags & GEMM_ACCUMULATE.
 * Row blocks of 4 and then single rows; column blocks of 8, then 4, then single columns.
 */
function gemmFunction(): WasmFunction {
  const f = new WasmFunction('gemm', [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [a, sAi, sAk, b, ldb, c, ldc, M, N, K, bias, flags] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const row = f.local(i32);
  const jb = f.local(i32);
  const nBytes = f.local(i32);
  const kk = f.local(i32);
  const pb = f.local(i32);
  const MAXR = 4;
  const aRow = Array.from({ length: MAXR }, () => f.local(i32));
  const cRow = Array.from({ length: MAXR }, () => f.local(i32));
  const pa = Array.from({ length: MAXR }, () => f.local(i32));
  const acc = Array.from({ length: MAXR * 2 }, () => f.local(v128));
  const bv = [f.local(v128), f.local(v128)];
  const av = f.local(v128);
  const sacc = Array.from({ length: MAXR }, () => f.local(f32));

  /** Row pointers of A and C for rows row…row+mr−1. */
  const rowPointers = (mr: number) => {
    for (let r = 0; r < mr; r++) {
      f.get(a).get(row);
      if (r > 0) f.i32Const(r).i32Add();
      f.get(sAi).i32Mul().i32Add().set(aRow[r]);
      f.get(c).get(row);
      if (r > 0) f.i32Const(r).i32Add();
      f.get(ldc).i32Mul().i32Add().set(cRow[r]);
    }
  };

  /** One mr × 4·nv block of C at rows row…, columns jb…: accumulate over k, then store. */
  const tile = (mr: number, nv: number) => {
    // Start from the bias row or from zero.
    f.get(flags).i32Const(GEMM_BIAS).i32And().if();
    for (let v = 0; v < nv; v++)
      f.get(bias)
        .get(jb)
        .i32Add()
        .v128Load(16 * v)
        .set(acc[v]);
    f.else();
    for (let v = 0; v < nv; v++) f.v128Zero().set(acc[v]);
    f.end();
    for (let r = 1; r < mr; r++) for (let v = 0; v < nv; v++) f.get(acc[v]).set(acc[r * 2 + v]);
    for (let r = 0; r < mr; r++) f.get(aRow[r]).set(pa[r]);
    f.get(b).get(jb).i32Add().set(pb);
    f.get(K).set(kk);
    f.block().get(kk).i32Eqz().brIf(0);
    f.loop();
    for (let v = 0; v < nv; v++)
      f.get(pb)
        .v128Load(16 * v)
        .set(bv[v]);
    for (let r = 0; r < mr; r++) {
      f.get(pa[r]).v128Load32Splat().set(av);
      for (let v = 0; v < nv; v++)
        f.get(acc[r * 2 + v])
          .get(av)
          .get(bv[v])
          .f32x4Mul()
          .f32x4Add()
          .set(acc[r * 2 + v]);
      f.get(pa[r]).get(sAk).i32Add().set(pa[r]);
    }
    f.get(pb).get(ldb).i32Add().set(pb);
    f.get(kk).i32Const(1).i32Sub().tee(kk).brIf(0);
    f.end().end();
    // Store, adding what C holds when accumulating.
    f.get(flags).i32Const(GEMM_ACCUMULATE).i32And().if();
    for (let r = 0; r < mr; r++) {
      for (let v = 0; v < nv; v++) {
        f.get(cRow[r]).get(jb).i32Add();
        f.get(acc[r * 2 + v])
          .get(cRow[r])
          .get(jb)
          .i32Add()
          .v128Load(16 * v)
          .f32x4Add();
        f.v128Store(16 * v);
      }
    }
    f.else();
    for (let r = 0; r < mr; r++)
      for (let v = 0; v < nv; v++)
        f.get(cRow[r])
          .get(jb)
          .i32Add()
          .get(acc[r * 2 + v])
          .v128Store(16 * v);
    f.end();
  };

  /** Single columns jb…nBytes−4 of rows row…row+mr−1, scalar. */
  const scalarColumns = (mr: number) => {
    f.block().loop();
    f.get(jb).get(nBytes).i32GeU().brIf(1);
    for (let r = 0; r < mr; r++) {
      f.get(flags).i32Const(GEMM_BIAS).i32And().if();
      f.get(bias).get(jb).i32Add().f32Load().set(sacc[r]);
      f.else().f32Const(0).set(sacc[r]).end();
      f.get(aRow[r]).set(pa[r]);
    }
    f.get(b).get(jb).i32Add().set(pb);
    f.get(K).set(kk);
    f.block().get(kk).i32Eqz().brIf(0);
    f.loop();
    for (let r = 0; r < mr; r++) {
      f.get(sacc[r]).get(pa[r]).f32Load().get(pb).f32Load().f32Mul().f32Add().set(sacc[r]);
      f.get(pa[r]).get(sAk).i32Add().set(pa[r]);
    }
    f.get(pb).get(ldb).i32Add().set(pb);
    f.get(kk).i32Const(1).i32Sub().tee(kk).brIf(0);
    f.end().end();
    for (let r = 0; r < mr; r++) {
      f.get(flags).i32Const(GEMM_ACCUMULATE).i32And().if();
      f.get(sacc[r]).get(cRow[r]).get(jb).i32Add().f32Load().f32Add().set(sacc[r]);
      f.end();
      f.get(cRow[r]).get(jb).i32Add().get(sacc[r]).f32Store();
    }
    f.get(jb).i32Const(4).i32Add().set(jb);
    f.br(0);
    f.end().end();
  };

  /** All columns of rows row…row+mr−1. */
  const rowBlock = (mr: number) => {
    rowPointers(mr);
    f.i32Const(0).set(jb);
    f.block().loop();
    f.get(jb).i32Const(32).i32Add().get(nBytes).i32GtU().brIf(1);
    tile(mr, 2);
    f.get(jb).i32Const(32).i32Add().set(jb);
    f.br(0);
    f.end().end();
    f.get(jb).i32Const(16).i32Add().get(nBytes).i32LeU().if();
    tile(mr, 1);
    f.get(jb).i32Const(16).i32Add().set(jb);
    f.end();
    scalarColumns(mr);
  };

  f.get(N).i32Const(2).i32Shl().set(nBytes);
  f.i32Const(0).set(row);
  f.block().loop();
  f.get(row).i32Const(4).i32Add().get(M).i32GtU().brIf(1);
  rowBlock(4);
  f.get(row).i32Const(4).i32Add().set(row);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(row).get(M).i32GeU().brIf(1);
  rowBlock(1);
  f.get(row).i32Const(1).i32Add().set(row);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * gemmNT(a, lda, b, ldb, c, ldc, M, N, K, bias, flags): C[i, j] (+)= Σ_k A[i, k]·B[j, k]
 * (+ bias[j]) — a product with the right operand transposed, as dot products of rows that are
 * both contiguous, so that Bᵀ is never materialised (the backward dX = dY·Wᵀ reads W as it is).
 * Tiles of 2 rows of A × 4 rows of B keep 8 v128 partial sums over k in steps of 4; a tile's four
 * sums per row are reduced with two rounds of shuffles into one vector (the 4 outputs), the
 * K % 4 remaining products are added per element. Edge tiles: 1 row, 1 column.
 */
function gemmNTFunction(): WasmFunction {
  const f = new WasmFunction('gemmNT', [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [a, lda, b, ldb, c, ldc, M, N, K, bias, flags] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const row = f.local(i32);
  const col = f.local(i32);
  const kb = f.local(i32);
  const k4b = f.local(i32);
  const kEnd = f.local(i32);
  const aRow = [f.local(i32), f.local(i32)];
  const bRow = [f.local(i32), f.local(i32), f.local(i32), f.local(i32)];
  const acc = Array.from({ length: 8 }, () => f.local(v128));
  const av = [f.local(v128), f.local(v128)];
  const bv = f.local(v128);
  const t0 = f.local(v128);
  const t1 = f.local(v128);
  const res = f.local(v128);
  const sres = f.local(f32);
  const tail = Array.from({ length: 8 }, () => f.local(f32));
  const cAddr = f.local(i32);

  f.get(K).i32Const(-4).i32And().i32Const(2).i32Shl().set(k4b);
  f.get(K).i32Const(2).i32Shl().set(kEnd);

  const tile = (mr: number, nc: number) => {
    for (let r = 0; r < mr; r++) f.get(a).get(row).i32Const(r).i32Add().get(lda).i32Mul().i32Add().set(aRow[r]);
    for (let q = 0; q < nc; q++) f.get(b).get(col).i32Const(q).i32Add().get(ldb).i32Mul().i32Add().set(bRow[q]);
    for (let x = 0; x < mr * nc; x++) f.v128Zero().set(acc[x]);
    f.i32Const(0).set(kb);
    f.block().loop();
    f.get(kb).get(k4b).i32GeU().brIf(1);
    for (let r = 0; r < mr; r++) f.get(aRow[r]).get(kb).i32Add().v128Load().set(av[r]);
    for (let q = 0; q < nc; q++) {
      f.get(bRow[q]).get(kb).i32Add().v128Load().set(bv);
      for (let r = 0; r < mr; r++)
        f.get(acc[r * nc + q])
          .get(av[r])
          .get(bv)
          .f32x4Mul()
          .f32x4Add()
          .set(acc[r * nc + q]);
    }
    f.get(kb).i32Const(16).i32Add().set(kb);
    f.br(0);
    f.end().end();
    // The K % 4 rest, scalar.
    for (let x = 0; x < mr * nc; x++) f.f32Const(0).set(tail[x]);
    f.block().loop();
    f.get(kb).get(kEnd).i32GeU().brIf(1);
    for (let r = 0; r < mr; r++) {
      for (let q = 0; q < nc; q++) {
        f.get(tail[r * nc + q])
          .get(aRow[r])
          .get(kb)
          .i32Add()
          .f32Load()
          .get(bRow[q])
          .get(kb)
          .i32Add()
          .f32Load()
          .f32Mul()
          .f32Add()
          .set(tail[r * nc + q]);
      }
    }
    f.get(kb).i32Const(4).i32Add().set(kb);
    f.br(0);
    f.end().end();
    for (let r = 0; r < mr; r++) {
      f.get(c)
        .get(row)
        .i32Const(r)
        .i32Add()
        .get(ldc)
        .i32Mul()
        .i32Add()
        .get(col)
        .i32Const(2)
        .i32Shl()
        .i32Add()
        .set(cAddr);
      if (nc === 4) {
        // [Σa, Σb, Σc, Σd] from the four accumulators of this row.
        const [p0, p1, p2, p3] = [acc[r * 4], acc[r * 4 + 1], acc[r * 4 + 2], acc[r * 4 + 3]];
        f.get(p0).get(p1).shuffle32([0, 4, 1, 5]).get(p0).get(p1).shuffle32([2, 6, 3, 7]).f32x4Add().set(t0);
        f.get(p2).get(p3).shuffle32([0, 4, 1, 5]).get(p2).get(p3).shuffle32([2, 6, 3, 7]).f32x4Add().set(t1);
        f.get(t0).get(t1).shuffle32([0, 1, 4, 5]).get(t0).get(t1).shuffle32([2, 3, 6, 7]).f32x4Add().set(res);
        // + the tail products, lane by lane.
        f.v128Zero();
        for (let q = 0; q < 4; q++) f.get(tail[r * 4 + q]).f32x4ReplaceLane(q);
        f.get(res).f32x4Add().set(res);
        f.get(flags).i32Const(GEMM_BIAS).i32And().if();
        f.get(res).get(bias).get(col).i32Const(2).i32Shl().i32Add().v128Load().f32x4Add().set(res);
        f.end();
        f.get(flags).i32Const(GEMM_ACCUMULATE).i32And().if();
        f.get(res).get(cAddr).v128Load().f32x4Add().set(res);
        f.end();
        f.get(cAddr).get(res).v128Store();
      } else {
        const p0 = acc[r];
        f.get(p0).f32x4ExtractLane(0).get(p0).f32x4ExtractLane(1).f32Add();
        f.get(p0).f32x4ExtractLane(2).get(p0).f32x4ExtractLane(3).f32Add().f32Add().get(tail[r]).f32Add().set(sres);
        f.get(flags).i32Const(GEMM_BIAS).i32And().if();
        f.get(sres).get(bias).get(col).i32Const(2).i32Shl().i32Add().f32Load().f32Add().set(sres);
        f.end();
        f.get(flags).i32Const(GEMM_ACCUMULATE).i32And().if();
        f.get(sres).get(cAddr).f32Load().f32Add().set(sres);
        f.end();
        f.get(cAddr).get(sres).f32Store();
      }
    }
  };

  const rowBlock = (mr: number) => {
    f.i32Const(0).set(col);
    f.block().loop();
    f.get(col).i32Const(4).i32Add().get(N).i32GtU().brIf(1);
    tile(mr, 4);
    f.get(col).i32Const(4).i32Add().set(col);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(col).get(N).i32GeU().brIf(1);
    tile(mr, 1);
    f.get(col).i32Const(1).i32Add().set(col);
    f.br(0);
    f.end().end();
  };
  f.i32Const(0).set(row);
  f.block().loop();
  f.get(row).i32Const(2).i32Add().get(M).i32GtU().brIf(1);
  rowBlock(2);
  f.get(row).i32Const(2).i32Add().set(row);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(row).get(M).i32GeU().brIf(1);
  rowBlock(1);
  f.get(row).i32Const(1).i32Add().set(row);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * transpose(src, dst, R, C): dst [C, R] = srcᵀ for a row-major src [R, C] (counts, not bytes).
 * 4×4 blocks are transposed in registers with two rounds of shuffles; blocks are visited in
 * column chunks of 32 so that the 32 destination rows being written stay in L1. Edges (R % 4,
 * C % 4) are copied element by element. Values are moved as bits (i32), never rounded.
 */
function transposeFunction(): WasmFunction {
  const f = new WasmFunction('transpose', [i32, i32, i32, i32]);
  const [src, dst, R, C] = [0, 1, 2, 3];
  const r4 = f.local(i32);
  const c4 = f.local(i32);
  const i = f.local(i32);
  const j = f.local(i32);
  const jc = f.local(i32);
  const jEnd = f.local(i32);
  const ps = f.local(i32);
  const pd = f.local(i32);
  const rowBytes = f.local(i32);
  const colBytes = f.local(i32);
  const x = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const t = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];

  f.get(R).i32Const(-4).i32And().set(r4);
  f.get(C).i32Const(-4).i32And().set(c4);
  f.get(C).i32Const(2).i32Shl().set(rowBytes); // bytes per source row
  f.get(R).i32Const(2).i32Shl().set(colBytes); // bytes per destination row

  // 4×4 blocks: for each chunk of 32 columns, for each 4 rows, for each 4 columns of the chunk.
  f.i32Const(0).set(jc);
  f.block().loop();
  f.get(jc).get(c4).i32GeU().brIf(1);
  f.get(jc).i32Const(32).i32Add().set(jEnd);
  f.get(jEnd).get(c4).i32GtU().if().get(c4).set(jEnd).end();
  f.i32Const(0).set(i);
  f.block().loop();
  f.get(i).get(r4).i32GeU().brIf(1);
  f.get(jc).set(j);
  f.block().loop();
  f.get(j).get(jEnd).i32GeU().brIf(1);
  // ps = src + (i·C + j)·4; load 4 rows.
  f.get(src).get(i).get(C).i32Mul().get(j).i32Add().i32Const(2).i32Shl().i32Add().set(ps);
  for (let r = 0; r < 4; r++) {
    f.get(ps);
    if (r > 0) f.get(rowBytes).i32Const(r).i32Mul().i32Add();
    f.v128Load().set(x[r]);
  }
  // Round 1: interleave pairs of rows; round 2: pairs of 64-bit halves.
  f.get(x[0]).get(x[1]).shuffle32([0, 4, 1, 5]).set(t[0]);
  f.get(x[0]).get(x[1]).shuffle32([2, 6, 3, 7]).set(t[1]);
  f.get(x[2]).get(x[3]).shuffle32([0, 4, 1, 5]).set(t[2]);
  f.get(x[2]).get(x[3]).shuffle32([2, 6, 3, 7]).set(t[3]);
  // pd = dst + (j·R + i)·4; store 4 rows of the transpose.
  f.get(dst).get(j).get(R).i32Mul().get(i).i32Add().i32Const(2).i32Shl().i32Add().set(pd);
  const out: Array<[number, number, [number, number, number, number]]> = [
    [t[0], t[2], [0, 1, 4, 5]],
    [t[0], t[2], [2, 3, 6, 7]],
    [t[1], t[3], [0, 1, 4, 5]],
    [t[1], t[3], [2, 3, 6, 7]],
  ];
  out.forEach(([p, q, lanes], r) => {
    f.get(pd);
    if (r > 0) f.get(colBytes).i32Const(r).i32Mul().i32Add();
    f.get(p).get(q).shuffle32(lanes).v128Store();
  });
  f.get(j).i32Const(4).i32Add().set(j);
  f.br(0);
  f.end().end();
  f.get(i).i32Const(4).i32Add().set(i);
  f.br(0);
  f.end().end();
  f.get(jc).i32Const(32).i32Add().set(jc);
  f.br(0);
  f.end().end();

  /** Element copy dst[jj][ii] = src[ii][jj] for ii in [i0, i1), jj in [j0, j1). */
  const scalarRegion = (i0: () => void, i1: number, j0: () => void, j1: number) => {
    i0();
    f.set(i);
    f.block().loop();
    f.get(i).get(i1).i32GeU().brIf(1);
    j0();
    f.set(j);
    f.block().loop();
    f.get(j).get(j1).i32GeU().brIf(1);
    f.get(dst).get(j).get(R).i32Mul().get(i).i32Add().i32Const(2).i32Shl().i32Add();
    f.get(src).get(i).get(C).i32Mul().get(j).i32Add().i32Const(2).i32Shl().i32Add().i32Load();
    f.i32Store();
    f.get(j).i32Const(1).i32Add().set(j);
    f.br(0);
    f.end().end();
    f.get(i).i32Const(1).i32Add().set(i);
    f.br(0);
    f.end().end();
  };
  // Right edge: rows [0, r4), columns [c4, C); bottom edge: rows [r4, R), all columns.
  scalarRegion(
    () => f.i32Const(0),
    r4,
    () => f.get(c4),
    C,
  );
  scalarRegion(
    () => f.get(r4),
    R,
    () => f.i32Const(0),
    C,
  );
  return f;
}

/**
 * copyBlocks(src, dst, n1, n2, s1, s2, d1, d2, bytes): for 0 ≤ u < n1, 0 ≤ v < n2, copy `bytes`
 * bytes from src + u·s1 + v·s2 to dst + u·d1 + v·d2 (memory.copy). A permutation of axes that
 * keeps the last axis in place is such a copy of contiguous blocks, e.g. [g, n, c] → [n, g, c].
 */
function copyBlocksFunction(): WasmFunction {
  const f = new WasmFunction('copyBlocks', [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [src, dst, n1, n2, s1, s2, d1, d2, bytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const u = f.local(i32);
  const v = f.local(i32);
  const ps = f.local(i32);
  const pd = f.local(i32);
  f.i32Const(0).set(u);
  f.block().loop();
  f.get(u).get(n1).i32GeU().brIf(1);
  f.get(src).get(u).get(s1).i32Mul().i32Add().set(ps);
  f.get(dst).get(u).get(d1).i32Mul().i32Add().set(pd);
  f.i32Const(0).set(v);
  f.block().loop();
  f.get(v).get(n2).i32GeU().brIf(1);
  f.get(pd).get(ps).get(bytes).memoryCopy();
  f.get(ps).get(s2).i32Add().set(ps);
  f.get(pd).get(d2).i32Add().set(pd);
  f.get(v).i32Const(1).i32Add().set(v);
  f.br(0);
  f.end().end();
  f.get(u).i32Const(1).i32Add().set(u);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * colsum(src, dst, R, C, accumulate): dst[j] (+)= Σ_i src[i·C + j] for a row-major src [R, C]
 * (counts). Rows are added into dst in order, four columns at a time, so the sum of each column
 * is taken in the same order as a sequential loop (the result does not depend on R % 4 or C % 4).
 */
function colsumFunction(): WasmFunction {
  const f = new WasmFunction('colsum', [i32, i32, i32, i32, i32]);
  const [src, dst, R, C, accumulate] = [0, 1, 2, 3, 4];
  const i = f.local(i32);
  const jb = f.local(i32);
  const c4b = f.local(i32);
  const cb = f.local(i32);
  const ps = f.local(i32);
  f.get(C).i32Const(-4).i32And().i32Const(2).i32Shl().set(c4b);
  f.get(C).i32Const(2).i32Shl().set(cb);
  // Zero dst unless accumulating.
  f.get(accumulate).i32Eqz().if();
  f.i32Const(0).set(jb);
  f.block().loop();
  f.get(jb).get(cb).i32GeU().brIf(1);
  f.get(dst).get(jb).i32Add().f32Const(0).f32Store();
  f.get(jb).i32Const(4).i32Add().set(jb);
  f.br(0);
  f.end().end();
  f.end();
  f.i32Const(0).set(i);
  f.get(src).set(ps);
  f.block().loop();
  f.get(i).get(R).i32GeU().brIf(1);
  f.i32Const(0).set(jb);
  f.block().loop();
  f.get(jb).get(c4b).i32GeU().brIf(1);
  f.get(dst).get(jb).i32Add();
  f.get(dst).get(jb).i32Add().v128Load().get(ps).get(jb).i32Add().v128Load().f32x4Add();
  f.v128Store();
  f.get(jb).i32Const(16).i32Add().set(jb);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(jb).get(cb).i32GeU().brIf(1);
  f.get(dst).get(jb).i32Add();
  f.get(dst).get(jb).i32Add().f32Load().get(ps).get(jb).i32Add().f32Load().f32Add();
  f.f32Store();
  f.get(jb).i32Const(4).i32Add().set(jb);
  f.br(0);
  f.end().end();
  f.get(ps).get(cb).i32Add().set(ps);
  f.get(i).i32Const(1).i32Add().set(i);
  f.br(0);
  f.end().end();
  return f;
}

/** 1.5·2^23 + 127: adding it to a float32 of magnitude < 2^22 leaves round(v) + 127 in its low bits. */
const MAGIC_BIAS = 12583039;

/** Constants of the GELU kernels, splatted into v128 locals once per call. */
const GELU_CONSTANTS = {
  zero: 0,
  one: 1,
  // |z| ≤ 80 keeps 2^n·p(r) and σ itself normal floats: denormal arithmetic costs ~100 cycles
  // on x86 (measured: 4.2 ns/element with inputs saturating at ±87 against 0.5 without), and
  // σ(±80) is 1 or 1.8e−35, below anything a float32 GELU output can show next to x.
  lo: -80,
  hi: 80,
  log2e: Math.LOG2E,
  magic: MAGIC_BIAS,
  ln2hi: 0.693359375, // ln 2 = ln2hi + ln2lo, ln2hi exact in float32 with 9 significant bits
  ln2lo: -2.1219444e-4,
  c2: 1 / 2,
  c3: 1 / 6,
  c4: 1 / 24,
  c5: 1 / 120,
  // u = x·(geluA + geluB·x²) = 2c(x + 0.044715x³); u' = geluDA + geluDB·x² = 2c(1 + 3·0.044715x²)
  geluA: 2 * GELU_C,
  geluB: 2 * GELU_C * GELU_CUBIC,
  geluDA: 2 * GELU_C,
  geluDB: 2 * GELU_C * 3 * GELU_CUBIC,
} as const;
type GeluConstants = Record<keyof typeof GELU_CONSTANTS, number>;

function geluConstants(f: WasmFunction): GeluConstants {
  const locals = {} as GeluConstants;
  for (const [key, value] of Object.entries(GELU_CONSTANTS)) {
    const local = f.local(v128);
    f.f32Const(value).f32x4Splat().set(local);
    locals[key as keyof GeluConstants] = local;
  }
  return locals;
}

/**
 * Emit code leaving σ(u) (f32x4) on the stack for u in local `u`.
 * σ(u) = 1 / (1 + e^z), z = −u clamped to [−80, 80] (see GELU_CONSTANTS);
 * e^z = 2^n·e^r with n = round(z·log2 e) and r = z − n·ln 2 (Cody–Waite: ln 2 in two parts).
 * n and 2^n come from the magic-bias trick (XNNPACK's f32 sigmoid/exp kernels): v = z·log2e +
 * (1.5·2^23 + 127) holds n + 127 in its low mantissa bits, so bits(v) << 23 is 2^n and
 * v − bias is n. e^r by its Taylor polynomial of degree 5 on |r| ≤ ln2/2 (truncation error
 * r⁶/6! < 2.5e−6 relative; measured max relative error of GELU 1.4e−6, see test/ops).
 */
function emitSigmoid(
  f: WasmFunction,
  u: number,
  c: GeluConstants,
  tmp: { z: number; v: number; n: number; r: number },
): void {
  const { z, v, n, r } = tmp;
  f.get(c.zero).get(u).f32x4Sub().get(c.lo).f32x4Pmax().get(c.hi).f32x4Pmin().set(z);
  f.get(z).get(c.log2e).f32x4Mul().get(c.magic).f32x4Add().set(v);
  f.get(v).get(c.magic).f32x4Sub().set(n);
  f.get(z).get(n).get(c.ln2hi).f32x4Mul().f32x4Sub().get(n).get(c.ln2lo).f32x4Mul().f32x4Sub().set(r);
  // 1 / (1 + p(r)·2^n),  p(r) = 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r/120))))
  f.get(c.one);
  f.get(c.one);
  f.get(r).get(c.c5).f32x4Mul().get(c.c4).f32x4Add();
  for (const k of [c.c3, c.c2, c.one, c.one]) f.get(r).f32x4Mul().get(k).f32x4Add();
  f.get(v).i32Const(23).i32x4Shl().f32x4Mul();
  f.f32x4Add().f32x4Div();
}

/**
 * gelu(x, y, s, count): y = x·σ(u) and s = σ(u), u = 2c(x + 0.044715x³), c = √(2/π) — GELU's
 * tanh form, since ½(1 + tanh(v)) = σ(2v) (lib/ops/nn.ts). s is kept for the backward pass.
 * Whole vectors of 4 only: the caller handles count % 4 trailing elements.
 */
function geluFunction(): WasmFunction {
  const f = new WasmFunction('gelu', [i32, i32, i32, i32]);
  const [x, y, sOut, count] = [0, 1, 2, 3];
  const end = f.local(i32);
  const end2 = f.local(i32);
  const px = f.local(i32);
  const py = f.local(i32);
  const ps = f.local(i32);
  const c = geluConstants(f);
  // Four independent vectors per iteration, so that the CPU overlaps their dependency chains
  // (measured 1.22 → 0.90 → 0.78 ns/element for 1, 2, 4), then one vector at a time.
  const lanes = [0, 1, 2, 3].map(() => ({
    xv: f.local(v128),
    u: f.local(v128),
    sv: f.local(v128),
    tmp: { z: f.local(v128), v: f.local(v128), n: f.local(v128), r: f.local(v128) },
  }));
  f.get(x).get(count).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end);
  f.get(x).get(count).i32Const(-16).i32And().i32Const(2).i32Shl().i32Add().set(end2);
  f.get(x).set(px);
  f.get(y).set(py);
  f.get(sOut).set(ps);
  const body = (count: number) => {
    const used = lanes.slice(0, count);
    used.forEach((l, i) =>
      f
        .get(px)
        .v128Load(16 * i)
        .set(l.xv),
    );
    for (const l of used)
      f.get(l.xv).get(c.geluA).get(c.geluB).get(l.xv).get(l.xv).f32x4Mul().f32x4Mul().f32x4Add().f32x4Mul().set(l.u);
    for (const l of used) {
      emitSigmoid(f, l.u, c, l.tmp);
      f.set(l.sv);
    }
    used.forEach((l, i) => {
      f.get(ps)
        .get(l.sv)
        .v128Store(16 * i);
      f.get(py)
        .get(l.xv)
        .get(l.sv)
        .f32x4Mul()
        .v128Store(16 * i);
    });
    for (const p of [px, py, ps])
      f.get(p)
        .i32Const(16 * count)
        .i32Add()
        .set(p);
  };
  for (const [limit, count] of [
    [end2, 4],
    [end, 1],
  ] as const) {
    f.block().loop();
    f.get(px).get(limit).i32GeU().brIf(1);
    body(count);
    f.br(0);
    f.end().end();
  }
  return f;
}

/**
 * geluGrad(x, s, dy, dx, count): dx = dy·(s + x·s(1 − s)·u'), u' = 2c(1 + 3·0.044715x²), with
 * s = σ(u) from the forward pass (d/dx x·σ(u) = σ(u) + x·σ'(u)·u', σ' = σ(1 − σ)).
 * Whole vectors of 4 only.
 */
function geluGradFunction(): WasmFunction {
  const f = new WasmFunction('geluGrad', [i32, i32, i32, i32, i32]);
  const [x, sIn, dy, dx, count] = [0, 1, 2, 3, 4];
  const end = f.local(i32);
  const px = f.local(i32);
  const ps = f.local(i32);
  const pdy = f.local(i32);
  const pdx = f.local(i32);
  const xv = f.local(v128);
  const sv = f.local(v128);
  const c = geluConstants(f);
  f.get(x).get(count).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end);
  f.get(x).set(px);
  f.get(sIn).set(ps);
  f.get(dy).set(pdy);
  f.get(dx).set(pdx);
  f.block().loop();
  f.get(px).get(end).i32GeU().brIf(1);
  f.get(px).v128Load().set(xv);
  f.get(ps).v128Load().set(sv);
  f.get(pdx);
  f.get(pdy).v128Load();
  f.get(sv);
  f.get(xv).get(sv).f32x4Mul().get(c.one).get(sv).f32x4Sub().f32x4Mul();
  f.get(c.geluDA).get(c.geluDB).get(xv).get(xv).f32x4Mul().f32x4Mul().f32x4Add().f32x4Mul();
  f.f32x4Add().f32x4Mul();
  f.v128Store();
  for (const p of [px, ps, pdy, pdx]) f.get(p).i32Const(16).i32Add().set(p);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * Emit: acc (f32 local) = Σ_j p[j]·q[j] over `count` floats at byte pointers in locals p, q
 * (p = q gives Σ p²): 4 lanes at a time, then the count % 4 rest. Uses the given scratch locals.
 */
function emitDot(
  f: WasmFunction,
  p: number,
  q: number,
  count: number,
  acc: number,
  t: { i: number; end: number; vacc: number },
): void {
  f.v128Zero().set(t.vacc);
  f.get(p).get(count).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(t.end);
  f.i32Const(0).set(t.i);
  f.block().loop();
  f.get(p).get(t.i).i32Add().get(t.end).i32GeU().brIf(1);
  f.get(t.vacc)
    .get(p)
    .get(t.i)
    .i32Add()
    .v128Load()
    .get(q)
    .get(t.i)
    .i32Add()
    .v128Load()
    .f32x4Mul()
    .f32x4Add()
    .set(t.vacc);
  f.get(t.i).i32Const(16).i32Add().set(t.i);
  f.br(0);
  f.end().end();
  f.get(t.vacc).f32x4ExtractLane(0).get(t.vacc).f32x4ExtractLane(1).f32Add();
  f.get(t.vacc).f32x4ExtractLane(2).get(t.vacc).f32x4ExtractLane(3).f32Add().f32Add().set(acc);
  f.get(p).get(count).i32Const(2).i32Shl().i32Add().set(t.end);
  f.block().loop();
  f.get(p).get(t.i).i32Add().get(t.end).i32GeU().brIf(1);
  f.get(acc).get(p).get(t.i).i32Add().f32Load().get(q).get(t.i).i32Add().f32Load().f32Mul().f32Add().set(acc);
  f.get(t.i).i32Const(4).i32Add().set(t.i);
  f.br(0);
  f.end().end();
}

/**
 * Emit: for j < count, out[j] = (a[j] − c·b[j])·s with f32 locals s, c (c = 0: out = a·s), four
 * lanes at a time then the rest. Pointers a, b, out in locals (b unused when c is absent).
 */
function emitScaleRow(
  f: WasmFunction,
  a: number,
  b: number | null,
  out: number,
  count: number,
  sLocal: number,
  cLocal: number | null,
  t: { i: number; end: number; vs: number; vc: number },
): void {
  f.get(sLocal).f32x4Splat().set(t.vs);
  if (cLocal != null) f.get(cLocal).f32x4Splat().set(t.vc);
  f.get(count).i32Const(-4).i32And().i32Const(2).i32Shl().set(t.end);
  f.i32Const(0).set(t.i);
  const element = (vector: boolean) => {
    const load = (ptr: number) =>
      vector ? f.get(ptr).get(t.i).i32Add().v128Load() : f.get(ptr).get(t.i).i32Add().f32Load();
    f.get(out).get(t.i).i32Add();
    load(a);
    if (cLocal != null && b != null) {
      load(b);
      if (vector) f.get(t.vc).f32x4Mul().f32x4Sub();
      else f.get(cLocal).f32Mul().f32Sub();
    }
    if (vector) f.get(t.vs).f32x4Mul().v128Store();
    else f.get(sLocal).f32Mul().f32Store();
    f.get(t.i)
      .i32Const(vector ? 16 : 4)
      .i32Add()
      .set(t.i);
  };
  f.block().loop();
  f.get(t.i).get(t.end).i32GeU().brIf(1);
  element(true);
  f.br(0);
  f.end().end();
  f.get(count).i32Const(2).i32Shl().set(t.end);
  f.block().loop();
  f.get(t.i).get(t.end).i32GeU().brIf(1);
  element(false);
  f.br(0);
  f.end().end();
}

/**
 * l2norm(x, y, s, rows, cols, eps): per row of x [rows, cols], s = 1/√(Σ x² + eps) and
 * y = x·s — vmoe's `normalize` (x · rsqrt(Σx² + eps)), paper §2.3. s [rows] is kept for the
 * backward pass.
 */
function l2normFunction(): WasmFunction {
  const f = new WasmFunction('l2norm', [i32, i32, i32, i32, i32, f32]);
  const [x, y, sOut, rows, cols, eps] = [0, 1, 2, 3, 4, 5];
  const r = f.local(i32);
  const px = f.local(i32);
  const py = f.local(i32);
  const ss = f.local(f32);
  const sc = f.local(f32);
  const t = { i: f.local(i32), end: f.local(i32), vacc: f.local(v128), vs: f.local(v128), vc: f.local(v128) };
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(rows).i32GeU().brIf(1);
  f.get(x).get(r).get(cols).i32Mul().i32Const(2).i32Shl().i32Add().set(px);
  f.get(y).get(r).get(cols).i32Mul().i32Const(2).i32Shl().i32Add().set(py);
  emitDot(f, px, px, cols, ss, t);
  f.f32Const(1).get(ss).get(eps).f32Add().f32Sqrt().f32Div().set(sc);
  f.get(sOut).get(r).i32Const(2).i32Shl().i32Add().get(sc).f32Store();
  emitScaleRow(f, px, null, py, cols, sc, null, t);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * l2normGrad(x, s, dy, dx, rows, cols): per row, with y = x·s, dx = s·(dy − y·Σ_j y_j·dy_j)
 * (from ∂s/∂x_j = −x_j·s³: dx_j = s·dy_j − x_j·s³·Σ_i x_i·dy_i).
 */
function l2normGradFunction(): WasmFunction {
  const f = new WasmFunction('l2normGrad', [i32, i32, i32, i32, i32, i32]);
  const [x, sIn, dy, dx, rows, cols] = [0, 1, 2, 3, 4, 5];
  const r = f.local(i32);
  const px = f.local(i32);
  const pdy = f.local(i32);
  const pdx = f.local(i32);
  const sc = f.local(f32);
  const dot = f.local(f32);
  const c = f.local(f32);
  const t = { i: f.local(i32), end: f.local(i32), vacc: f.local(v128), vs: f.local(v128), vc: f.local(v128) };
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(rows).i32GeU().brIf(1);
  f.get(r).get(cols).i32Mul().i32Const(2).i32Shl().set(px);
  f.get(dy).get(px).i32Add().set(pdy);
  f.get(dx).get(px).i32Add().set(pdx);
  f.get(x).get(px).i32Add().set(px);
  f.get(sIn).get(r).i32Const(2).i32Shl().i32Add().f32Load().set(sc);
  // Σ x·dy, then c = s²·Σ x·dy so that dx = s·(dy − x·c) = s·(dy − y·Σ y·dy).
  emitDot(f, px, pdy, cols, dot, t);
  f.get(sc).get(sc).f32Mul().get(dot).f32Mul().set(c);
  emitScaleRow(f, pdy, px, pdx, cols, sc, c, t);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * softmaxGrad(y, dy, dx, rows, cols): per row of y = softmax(x) [rows, cols],
 * dx = y·(dy − Σ_j y_j·dy_j) (the Jacobian of the softmax, diag(y) − y·yᵀ, applied to dy).
 */
function softmaxGradFunction(): WasmFunction {
  const f = new WasmFunction('softmaxGrad', [i32, i32, i32, i32, i32]);
  const [y, dy, dx, rows, cols] = [0, 1, 2, 3, 4];
  const r = f.local(i32);
  const py = f.local(i32);
  const pdy = f.local(i32);
  const pdx = f.local(i32);
  const dot = f.local(f32);
  const i = f.local(i32);
  const end = f.local(i32);
  const vdot = f.local(v128);
  const t = { i, end, vacc: f.local(v128) };
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(rows).i32GeU().brIf(1);
  f.get(r).get(cols).i32Mul().i32Const(2).i32Shl().set(py);
  f.get(dy).get(py).i32Add().set(pdy);
  f.get(dx).get(py).i32Add().set(pdx);
  f.get(y).get(py).i32Add().set(py);
  emitDot(f, py, pdy, cols, dot, t);
  f.get(dot).f32x4Splat().set(vdot);
  // dx = (dy − dot)·y, four lanes at a time, then the rest.
  f.get(cols).i32Const(-4).i32And().i32Const(2).i32Shl().set(end);
  f.i32Const(0).set(i);
  f.block().loop();
  f.get(i).get(end).i32GeU().brIf(1);
  f.get(pdx).get(i).i32Add();
  f.get(pdy).get(i).i32Add().v128Load().get(vdot).f32x4Sub().get(py).get(i).i32Add().v128Load().f32x4Mul();
  f.v128Store();
  f.get(i).i32Const(16).i32Add().set(i);
  f.br(0);
  f.end().end();
  f.get(cols).i32Const(2).i32Shl().set(end);
  f.block().loop();
  f.get(i).get(end).i32GeU().brIf(1);
  f.get(pdx).get(i).i32Add();
  f.get(pdy).get(i).i32Add().f32Load().get(dot).f32Sub().get(py).get(i).i32Add().f32Load().f32Mul();
  f.f32Store();
  f.get(i).i32Const(4).i32Add().set(i);
  f.br(0);
  f.end().end();
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * Emit a loop over the columns of a row: `vector(jb)` for each 4 columns (jb = byte offset in a
 * local), then `scalar(jb)` for the cols % 4 rest.
 */
function emitColumns(
  f: WasmFunction,
  cols: number,
  jb: number,
  end: number,
  vector: () => void,
  scalar: () => void,
): void {
  f.get(cols).i32Const(-4).i32And().i32Const(2).i32Shl().set(end);
  f.i32Const(0).set(jb);
  f.block().loop();
  f.get(jb).get(end).i32GeU().brIf(1);
  vector();
  f.get(jb).i32Const(16).i32Add().set(jb);
  f.br(0);
  f.end().end();
  f.get(cols).i32Const(2).i32Shl().set(end);
  f.block().loop();
  f.get(jb).get(end).i32GeU().brIf(1);
  scalar();
  f.get(jb).i32Const(4).i32Add().set(jb);
  f.br(0);
  f.end().end();
}

/** Horizontal sum of a v128 local plus an f32 local, left on the stack. */
function emitLaneSum(f: WasmFunction, v: number, extra: number): void {
  f.get(v).f32x4ExtractLane(0).get(v).f32x4ExtractLane(1).f32Add();
  f.get(v).f32x4ExtractLane(2).get(v).f32x4ExtractLane(3).f32Add().f32Add().get(extra).f32Add();
}

/**
 * layerNorm(x, scale, bias, y, xhat, rstd, rows, cols, eps): per row of x [rows, cols]
 * (Ba et al. 2016, flax nn.LayerNorm): μ = mean(x), r = 1/√(mean((x − μ)²) + eps) (two passes,
 * the variance of the centred values), x̂ = (x − μ)·r, y = x̂·scale + bias. x̂ and r are kept for
 * the backward pass.
 */
function layerNormFunction(): WasmFunction {
  const f = new WasmFunction('layerNorm', [i32, i32, i32, i32, i32, i32, i32, i32, f32]);
  const [x, scale, bias, y, xhat, rstd, rows, cols, eps] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const r = f.local(i32);
  const off = f.local(i32);
  const jb = f.local(i32);
  const end = f.local(i32);
  const vs = f.local(v128);
  const vmean = f.local(v128);
  const vr = f.local(v128);
  const vt = f.local(v128);
  const ss = f.local(f32);
  const mean = f.local(f32);
  const rs = f.local(f32);
  const t = f.local(f32);
  const invCols = f.local(f32);
  f.f32Const(1).get(cols).f32ConvertI32U().f32Div().set(invCols);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(rows).i32GeU().brIf(1);
  f.get(r).get(cols).i32Mul().i32Const(2).i32Shl().set(off);
  // μ
  f.v128Zero().set(vs);
  f.f32Const(0).set(ss);
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => f.get(vs).get(x).get(off).i32Add().get(jb).i32Add().v128Load().f32x4Add().set(vs),
    () => f.get(ss).get(x).get(off).i32Add().get(jb).i32Add().f32Load().f32Add().set(ss),
  );
  emitLaneSum(f, vs, ss);
  f.get(invCols).f32Mul().set(mean);
  f.get(mean).f32x4Splat().set(vmean);
  // r = 1/√(mean((x − μ)²) + eps)
  f.v128Zero().set(vs);
  f.f32Const(0).set(ss);
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => {
      f.get(x).get(off).i32Add().get(jb).i32Add().v128Load().get(vmean).f32x4Sub().set(vt);
      f.get(vs).get(vt).get(vt).f32x4Mul().f32x4Add().set(vs);
    },
    () => {
      f.get(x).get(off).i32Add().get(jb).i32Add().f32Load().get(mean).f32Sub().set(t);
      f.get(ss).get(t).get(t).f32Mul().f32Add().set(ss);
    },
  );
  emitLaneSum(f, vs, ss);
  f.get(invCols).f32Mul().get(eps).f32Add().f32Sqrt().set(t);
  f.f32Const(1).get(t).f32Div().set(rs);
  f.get(rstd).get(r).i32Const(2).i32Shl().i32Add().get(rs).f32Store();
  f.get(rs).f32x4Splat().set(vr);
  // x̂, y
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => {
      f.get(x).get(off).i32Add().get(jb).i32Add().v128Load().get(vmean).f32x4Sub().get(vr).f32x4Mul().set(vt);
      f.get(xhat).get(off).i32Add().get(jb).i32Add().get(vt).v128Store();
      f.get(y).get(off).i32Add().get(jb).i32Add();
      f.get(vt).get(scale).get(jb).i32Add().v128Load().f32x4Mul().get(bias).get(jb).i32Add().v128Load().f32x4Add();
      f.v128Store();
    },
    () => {
      f.get(x).get(off).i32Add().get(jb).i32Add().f32Load().get(mean).f32Sub().get(rs).f32Mul().set(t);
      f.get(xhat).get(off).i32Add().get(jb).i32Add().get(t).f32Store();
      f.get(y).get(off).i32Add().get(jb).i32Add();
      f.get(t).get(scale).get(jb).i32Add().f32Load().f32Mul().get(bias).get(jb).i32Add().f32Load().f32Add();
      f.f32Store();
    },
  );
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * layerNormGrad(dy, xhat, rstd, scale, dx, dscale, dbias, rows, cols): with g = dy·scale,
 *   dx = r·(g − mean(g) − x̂·mean(g·x̂))   per row,
 *   dscale = Σ_rows dy·x̂,  dbias = Σ_rows dy   (rows added in order).
 */
function layerNormGradFunction(): WasmFunction {
  const f = new WasmFunction('layerNormGrad', [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
  const [dy, xhat, rstd, scale, dx, dscale, dbias, rows, cols] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const r = f.local(i32);
  const off = f.local(i32);
  const jb = f.local(i32);
  const end = f.local(i32);
  const vg = f.local(v128);
  const vsum = f.local(v128);
  const vsumx = f.local(v128);
  const vmg = f.local(v128);
  const vmgx = f.local(v128);
  const vr = f.local(v128);
  const sum = f.local(f32);
  const sumx = f.local(f32);
  const mg = f.local(f32);
  const mgx = f.local(f32);
  const rs = f.local(f32);
  const t = f.local(f32);
  const invCols = f.local(f32);
  f.f32Const(1).get(cols).f32ConvertI32U().f32Div().set(invCols);
  // dscale = dbias = 0
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => {
      f.get(dscale).get(jb).i32Add().v128Zero().v128Store();
      f.get(dbias).get(jb).i32Add().v128Zero().v128Store();
    },
    () => {
      f.get(dscale).get(jb).i32Add().f32Const(0).f32Store();
      f.get(dbias).get(jb).i32Add().f32Const(0).f32Store();
    },
  );
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(rows).i32GeU().brIf(1);
  f.get(r).get(cols).i32Mul().i32Const(2).i32Shl().set(off);
  // mean(g), mean(g·x̂)
  f.v128Zero().set(vsum);
  f.v128Zero().set(vsumx);
  f.f32Const(0).set(sum);
  f.f32Const(0).set(sumx);
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => {
      f.get(dy).get(off).i32Add().get(jb).i32Add().v128Load().get(scale).get(jb).i32Add().v128Load().f32x4Mul().set(vg);
      f.get(vsum).get(vg).f32x4Add().set(vsum);
      f.get(vsumx).get(vg).get(xhat).get(off).i32Add().get(jb).i32Add().v128Load().f32x4Mul().f32x4Add().set(vsumx);
    },
    () => {
      f.get(dy).get(off).i32Add().get(jb).i32Add().f32Load().get(scale).get(jb).i32Add().f32Load().f32Mul().set(t);
      f.get(sum).get(t).f32Add().set(sum);
      f.get(sumx).get(t).get(xhat).get(off).i32Add().get(jb).i32Add().f32Load().f32Mul().f32Add().set(sumx);
    },
  );
  emitLaneSum(f, vsum, sum);
  f.get(invCols).f32Mul().set(mg);
  emitLaneSum(f, vsumx, sumx);
  f.get(invCols).f32Mul().set(mgx);
  f.get(rstd).get(r).i32Const(2).i32Shl().i32Add().f32Load().set(rs);
  f.get(mg).f32x4Splat().set(vmg);
  f.get(mgx).f32x4Splat().set(vmgx);
  f.get(rs).f32x4Splat().set(vr);
  // dx, and the parameter gradients
  emitColumns(
    f,
    cols,
    jb,
    end,
    () => {
      const xh = () => f.get(xhat).get(off).i32Add().get(jb).i32Add().v128Load();
      const d = () => f.get(dy).get(off).i32Add().get(jb).i32Add().v128Load();
      f.get(dx).get(off).i32Add().get(jb).i32Add();
      d();
      f.get(scale).get(jb).i32Add().v128Load().f32x4Mul().get(vmg).f32x4Sub();
      xh();
      f.get(vmgx).f32x4Mul().f32x4Sub().get(vr).f32x4Mul().v128Store();
      f.get(dscale).get(jb).i32Add().get(dscale).get(jb).i32Add().v128Load();
      d();
      xh();
      f.f32x4Mul().f32x4Add().v128Store();
      f.get(dbias).get(jb).i32Add().get(dbias).get(jb).i32Add().v128Load();
      d();
      f.f32x4Add().v128Store();
    },
    () => {
      const xh = () => f.get(xhat).get(off).i32Add().get(jb).i32Add().f32Load();
      const d = () => f.get(dy).get(off).i32Add().get(jb).i32Add().f32Load();
      f.get(dx).get(off).i32Add().get(jb).i32Add();
      d();
      f.get(scale).get(jb).i32Add().f32Load().f32Mul().get(mg).f32Sub();
      xh();
      f.get(mgx).f32Mul().f32Sub().get(rs).f32Mul().f32Store();
      f.get(dscale).get(jb).i32Add().get(dscale).get(jb).i32Add().f32Load();
      d();
      xh();
      f.f32Mul().f32Add().f32Store();
      f.get(dbias).get(jb).i32Add().get(dbias).get(jb).i32Add().f32Load();
      d();
      f.f32Add().f32Store();
    },
  );
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

/** The exported kernels of the module, with their JavaScript signatures. */
export interface WasmKernelExports {
  gemm(
    a: number,
    sAi: number,
    sAk: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    M: number,
    N: number,
    K: number,
    bias: number,
    flags: number,
  ): void;
  gemmNT(
    a: number,
    lda: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    M: number,
    N: number,
    K: number,
    bias: number,
    flags: number,
  ): void;
  transpose(src: number, dst: number, rows: number, cols: number): void;
  copyBlocks(
    src: number,
    dst: number,
    n1: number,
    n2: number,
    s1: number,
    s2: number,
    d1: number,
    d2: number,
    bytes: number,
  ): void;
  colsum(src: number, dst: number, rows: number, cols: number, accumulate: number): void;
  gelu(x: number, y: number, s: number, count: number): void;
  geluGrad(x: number, s: number, dy: number, dx: number, count: number): void;
  l2norm(x: number, y: number, s: number, rows: number, cols: number, eps: number): void;
  l2normGrad(x: number, s: number, dy: number, dx: number, rows: number, cols: number): void;
  softmaxGrad(y: number, dy: number, dx: number, rows: number, cols: number): void;
  layerNorm(
    x: number,
    scale: number,
    bias: number,
    y: number,
    xhat: number,
    rstd: number,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormGrad(
    dy: number,
    xhat: number,
    rstd: number,
    scale: number,
    dx: number,
    dscale: number,
    dbias: number,
    rows: number,
    cols: number,
  ): void;
}

/** The module's bytes (built once). */
let moduleBytes: Uint8Array | null = null;
export function kernelModuleBytes(): Uint8Array {
  moduleBytes ??= assemble([
    gemmFunction(),
    gemmNTFunction(),
    transposeFunction(),
    copyBlocksFunction(),
    colsumFunction(),
    geluFunction(),
    geluGradFunction(),
    l2normFunction(),
    l2normGradFunction(),
    softmaxGradFunction(),
    layerNormFunction(),
    layerNormGradFunction(),
  ]);
  return moduleBytes;
}

/** Instantiate the kernels on a memory (the tfjs wasm backend's heap). */
export function instantiateKernels(memory: WasmMemory): WasmKernelExports {
  const api = wasmApi();
  if (api == null) throw new Error('wasm-kernels: this runtime has no WebAssembly');
  const bytes = kernelModuleBytes();
  if (!api.validate(bytes)) throw new Error('wasm-kernels: the generated module does not validate (no wasm SIMD?)');
  const instance = new api.Instance(new api.Module(bytes), { env: { memory } });
  return instance.exports as unknown as WasmKernelExports;
}
