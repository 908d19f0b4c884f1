/**
 * Matrix multiply for the engine: C = α · op(A) · op(B)  (+ C when accumulating), row-major f32 tensors.
 *
 *   op(A) is m×k: A itself (stored [m, k]) or Aᵀ (transA: stored [k, m])
 *   op(B) is k×n: B itself (stored [k, n]) or Bᵀ (transB: stored [n, k])
 *   C_ij ← α · Σ_p op(A)_ip · op(B)_pj  (+ C_ij)
 *
 * The training step needs three of the four layouts: y = x·W (NN), dX = dY·Wᵀ (NT), dW = Xᵀ·dY (TN).
 * Every kernel computes one BM×BN block of C per workgroup, marching over k in BK-wide slabs:
 *
 *   1. stage   the BM×BK slab of op(A) and the BK×BN slab of op(B) from global memory into workgroup
 *              memory (reads follow the stored layout so that neighbouring invocations read neighbouring
 *              addresses; anything past m, n or k reads as 0, so ragged edges need no special case);
 *   2. multiply the staged slabs into per-invocation (or per-subgroup) accumulators, while the next
 *              slab's global loads are already in flight (register prefetch);
 *   3. write   α·acc (+ C) with bounds checks.
 *
 * Three families share that skeleton; `pickMatmulPath` chooses one for a device:
 *   'f32'        register tiling: each of 256 invocations owns a TM×TN patch of C (8×8 in a 128×128
 *                block, 4×4 in a 64×64 block where big blocks would leave the GPU part idle). One
 *                kernel per block size serves all four layouts (a uniform branch per staging step).
 *   'f16'        the same, with the operands rounded to f16 when staged (`enable f16`), products and
 *                sums in f32: C = α · Σ_p fl16(a_ip)·fl16(b_pj). Half the workgroup memory traffic;
 *                the numerics of the tensor-core path on devices without one.
 *   'f16-matrix' tensor cores through Dawn's subgroup matrices: staged slabs are f16, each 32-wide
 *                subgroup multiplies 16×16×16 fragments (`subgroupMatrixMultiplyAccumulate`, f32
 *                accumulators) for an FR×FC grid of 16×16 result tiles. Same numerics as 'f16' up to
 *                the order of the f32 additions. One kernel per layout and block size.
 * H200 (2026-12-04, bench/engine-matmul.ts) on the learner's shapes: f32 25–31 TFLOP/s, f16 18–25,
 * f16-matrix 60–97 (4096³: 31 / 25 / 97).
 * f16 rounding: |fl16(x) − x| ≤ 2⁻¹¹|x| (2⁻²⁴ absolute below 2⁻¹⁴); |x| > 65504 overflows, so inputs
 * of the f16 paths must stay in f16's range (activations and gradients are scaled for that).
 *
 * All reductions run in a fixed order: results are bit-identical from run to run.
 */
import { GpuError } from '../../../core/errors.js';
import type { EngineCapabilities } from '../device.js';
import { f, spread, u, type Kernel, type KernelSpec, type Recorder, type Runtime, type Tensor, memoizeSpec } from '../runtime.js';

/** Which kernel family computes the product (see the module comment). */
export type MatmulPath = 'f32' | 'f16' | 'f16-matrix';

/** Block size of the kernel: 'large' 128×128, 'small' 64×64; 'auto' picks by how the blocks fill the GPU. */
export type MatmulTile = 'auto' | 'large' | 'small';

/**
 * Choose the path for `requested` and say why (one line). 'auto' takes the tensor cores when the
 * device offers f16 subgroup matrices, else f32. A path the device cannot run falls back: 'f16-matrix'
 * to 'f16' (same operand rounding) when shader-f16 exists, else to 'f32'; 'f16' to 'f32'.
 */
export function pickMatmulPath(
  caps: EngineCapabilities,
  requested: 'auto' | 'f32' | 'f16' | 'f16-matrix',
): { path: MatmulPath; reason: string } {
  const matrixProblem = tensorCoreProblem(caps);
  if (requested === 'auto') {
    if (matrixProblem === undefined)
      return { path: 'f16-matrix', reason: 'auto: f16 subgroup matrices 16×16×16 (tensor cores), f32 accumulation' };
    return { path: 'f32', reason: `auto: ${matrixProblem}, so register-tiled f32` };
  }
  if (requested === 'f32') return { path: 'f32', reason: 'f32 requested: register-tiled f32' };
  if (requested === 'f16') {
    if (caps.shaderF16) return { path: 'f16', reason: 'f16 requested: operands rounded to f16 in workgroup memory, f32 accumulation' };
    return { path: 'f32', reason: 'f16 requested but the device lacks shader-f16: falling back to f32' };
  }
  if (matrixProblem === undefined)
    return { path: 'f16-matrix', reason: 'f16-matrix requested: f16 subgroup matrices 16×16×16 (tensor cores), f32 accumulation' };
  if (caps.shaderF16)
    return {
      path: 'f16',
      reason: `f16-matrix requested but ${matrixProblem}: falling back to f16 (same operand rounding, no tensor cores)`,
    };
  return { path: 'f32', reason: `f16-matrix requested but ${matrixProblem} and no shader-f16: falling back to f32` };
}

/** Why the tensor-core kernel cannot run here, or undefined when it can. */
function tensorCoreProblem(caps: EngineCapabilities): string | undefined {
  if (!caps.f16Matrix) return 'the device has no f16 subgroup matrices';
  // The kernel maps invocation i to subgroup ⌊i/32⌋, which holds only when every subgroup is 32 wide.
  if (caps.subgroupMinSize !== 32 || caps.subgroupMaxSize !== 32) {
    return `the subgroup size is ${caps.subgroupMinSize}..${caps.subgroupMaxSize}, not 32 (the tensor-core kernel assumes 32)`;
  }
  return undefined;
}

/** Arguments of `matmul` (see the module comment for the formula). */
export interface MatmulArgs {
  /** op(A): [m, k], or stored [k, m] when transA. f32. */
  a: Tensor;
  /** op(B): [k, n], or stored [n, k] when transB. f32. */
  b: Tensor;
  /** [m, n], f32; read too when accumulate. Must not overlap a or b. */
  c: Tensor;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** C += α·op(A)·op(B) instead of C = α·op(A)·op(B). Default false. */
  accumulate?: boolean;
  /** Default 1. */
  alpha?: number;
  path: MatmulPath;
  /** Block size; 'auto' (default) unless a benchmark wants one. */
  tile?: MatmulTile;
}

/** Record C = α·op(A)·op(B) (+ C) into `rec`. Throws RangeError on shapes the tensors cannot hold. */
export async function matmul(rt: Runtime, rec: Recorder, args: MatmulArgs): Promise<void> {
  const { a, b, c, m, n, k, path } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const alpha = args.alpha ?? 1;
  for (const [name, value] of [
    ['m', m],
    ['n', n],
    ['k', k],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`matmul: ${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isFinite(alpha)) throw new RangeError(`matmul: alpha must be finite, got ${alpha}`);
  const need: [Tensor, string, number][] = [
    [a, transA ? `A [k=${k}, m=${m}]` : `A [m=${m}, k=${k}]`, m * k],
    [b, transB ? `B [n=${n}, k=${k}]` : `B [k=${k}, n=${n}]`, k * n],
    [c, `C [m=${m}, n=${n}]`, m * n],
  ];
  for (const [t, what, elements] of need) {
    if (t.dtype !== 'f32') throw new RangeError(`matmul: ${what} must be f32, '${t.label}' is ${t.dtype}`);
    if (t.size < elements)
      throw new RangeError(`matmul: ${what} needs ${elements} elements, '${t.label}' [${t.shape.join(', ')}] has ${t.size}`);
  }
  for (const t of [a, b]) {
    if (t.bufferId === c.bufferId && t.offset < c.offset + c.bytes && c.offset < t.offset + t.bytes) {
      throw new RangeError(`matmul: the output '${c.label}' overlaps the input '${t.label}'`);
    }
  }
  const caps = rt.engine.caps;
  if (path === 'f16' && !caps.shaderF16)
    throw new GpuError("matmul path 'f16' needs shader-f16, which this device lacks (choose the path with pickMatmulPath)");
  if (path === 'f16-matrix' && tensorCoreProblem(caps) !== undefined) {
    throw new GpuError(`matmul path 'f16-matrix' cannot run here: ${tensorCoreProblem(caps)} (choose the path with pickMatmulPath)`);
  }

  const block = path === 'f16-matrix' ? MATRIX_BLOCKS : TILED_BLOCKS;
  const size = chooseTile(args.tile ?? 'auto', m, n, block.large.bm, block.large.bn);
  const kernel =
    path === 'f16-matrix'
      ? await rt.kernel(matrixKernel(MATRIX_BLOCKS[size], transA, transB))
      : await rt.kernel(tiledKernel(TILED_BLOCKS[size], path === 'f16'));
  const { bm, bn } = block[size];
  dispatchBlocks(rec, kernel, args, Math.ceil(m / bm), Math.ceil(n / bn), alpha);
}

/**
 * Workgroups the GPU runs side by side, for the block-size model below (an H200 has 132 SMs). On
 * another GPU the model is only a heuristic; `tile` overrides it.
 */
const CONCURRENT_BLOCKS = 132;

/**
 * The block size with the shorter estimated time, ⌈blocks / 132⌉ waves × the block's area. Large
 * blocks run ~15% more efficiently (more reuse per staged element), so small ones must win by that.
 * Measured on an H200 (f16-matrix; f32 alike): 1024×2736×4096 TN, 176 large blocks (2 uneven waves)
 * vs 704 small: small 69 vs 59 TFLOP/s; 4096×512×1368 NN, 128 large blocks (1 wave): large 77 vs 50.
 */
function chooseTile(tile: MatmulTile, m: number, n: number, bm: number, bn: number): 'large' | 'small' {
  if (tile !== 'auto') return tile;
  const cost = (h: number, w: number) => Math.ceil((Math.ceil(m / h) * Math.ceil(n / w)) / CONCURRENT_BLOCKS) * h * w;
  return cost(bm / 2, bn / 2) < 0.85 * cost(bm, bn) ? 'small' : 'large';
}

function dispatchBlocks(rec: Recorder, kernel: Kernel, args: MatmulArgs, tilesM: number, tilesN: number, alpha: number): void {
  const [gx, gy] = spread(tilesM * tilesN);
  rec.dispatch(
    kernel,
    [args.a, args.b, args.c],
    [
      u(args.m),
      u(args.n),
      u(args.k),
      u(tilesM),
      u(tilesN),
      u(gx),
      f(alpha),
      u(args.accumulate ? 1 : 0),
      u(args.transA ? 1 : 0),
      u(args.transB ? 1 : 0),
    ],
    [gx, gy],
  );
}

// ─── Shared WGSL pieces ──────────────────────────────────────────────────────────────────────────────

/**
 * Params, bindings, the bounded element reads of op(A) and op(B) for each stored layout, and the
 * bounded write of C. trans_a and trans_b are parameters: the tiled kernels branch on them (uniformly)
 * around each staging step, the tensor-core kernels are built per layout.
 */
function preamble(): string {
  return /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, tiles_m: u32, tiles_n: u32, grid_x: u32, alpha: f32, accumulate: u32, trans_a: u32, trans_b: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// op(A)[row, p], 0 outside m×k; A stored [m, k] (load_a_n) or [k, m] (load_a_t).
fn load_a_n(row: u32, p: u32) -> f32 {
  if (row >= P.m || p >= P.k) { return 0.0; }
  return A[row * P.k + p];
}
fn load_a_t(row: u32, p: u32) -> f32 {
  if (row >= P.m || p >= P.k) { return 0.0; }
  return A[p * P.m + row];
}
// op(B)[p, col], 0 outside k×n; B stored [k, n] (load_b_n) or [n, k] (load_b_t).
fn load_b_n(p: u32, col: u32) -> f32 {
  if (p >= P.k || col >= P.n) { return 0.0; }
  return B[p * P.n + col];
}
fn load_b_t(p: u32, col: u32) -> f32 {
  if (p >= P.k || col >= P.n) { return 0.0; }
  return B[col * P.k + p];
}
// C[row, col] ← α·v (+ C[row, col]) where inside m×n.
fn put(row: u32, col: u32, v: f32) {
  if (row >= P.m || col >= P.n) { return; }
  let idx = row * P.n + col;
  var out = P.alpha * v;
  if (P.accumulate != 0u) { out += C[idx]; }
  C[idx] = out;
}

// C[row, col..col+3] ← α·v (+ C) where inside m×n.
fn put4(row: u32, col: u32, v: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) { put(row, col + c, v[c]); }
}

// Block (tile_m, tile_n) of workgroup t: GROUP block-rows sweep the columns together, so that the
// slabs of A and B they share are read while still in L2.
const GROUP = 8u;
fn block_of(t: u32) -> vec2u {
  let per_group = GROUP * P.tiles_n;
  let first = (t / per_group) * GROUP;
  let rows = min(P.tiles_m - first, GROUP);
  let r = t % per_group;
  return vec2u(first + r % rows, r / rows);
}
`;
}

/**
 * Element e (a WGSL expression) of the BM×BK slab of op(A) that an invocation stages: (row, p). The
 * stored layout's contiguous axis runs fastest, so neighbouring invocations read neighbouring
 * addresses: rows when transA (A stored [k, m]), else p.
 */
function slabIndexA(e: string, bm: number, bk: number, transA: boolean): { row: string; p: string } {
  return transA ? { row: `(${e}) % ${bm}u`, p: `(${e}) / ${bm}u` } : { row: `(${e}) / ${bk}u`, p: `(${e}) % ${bk}u` };
}

/** Element e of the BK×BN slab of op(B): (p, col); p fastest when transB (B stored [n, k]), else columns. */
function slabIndexB(e: string, bk: number, bn: number, transB: boolean): { p: string; col: string } {
  return transB ? { p: `(${e}) % ${bk}u`, col: `(${e}) / ${bk}u` } : { p: `(${e}) / ${bn}u`, col: `(${e}) % ${bn}u` };
}

// ─── 'f32' and 'f16': register tiling ───────────────────────────────────────────────────────────────

/** Block BM×BN, slab depth BK, TM×TN outputs per invocation; (BM/TM)·(BN/TN) = 256 invocations. */
interface TiledBlock {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  readonly tm: number;
  readonly tn: number;
}

const TILED_BLOCKS: Record<'large' | 'small', TiledBlock> = {
  large: { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 },
  small: { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
};

/**
 * Invocation (tx, ty) owns rows {g·4·TY + 4·ty + r} and columns {h·4·TX + 4·tx + c} (g < TM/4, h < TN/4,
 * r, c < 4): four-wide groups strided across the block, so that a quarter-warp's vec4 reads of the
 * staged slabs are consecutive (no bank conflicts) and its writes of C are coalesced.
 * Staged slabs are stored k-major, As[p][row] and Bs[p][col], rows padded by one vec4.
 * What mattered on an H200 (f32, 128×128 block, 4096³): accumulators as named variables, not a
 * loop-indexed array (2 → 33 TFLOP/s); the layout as a uniform branch around the staging rather than a
 * select() per element (24 → 33); one kernel per layout would add ~4% (f32) to 7% (f16), at four times
 * the kernels to build, which a CPU Vulkan driver (the tests' lavapipe) compiles in seconds each.
 */
function tiledKernelSource(cfg: TiledBlock, half: boolean): KernelSpec {
  const { bm, bn, bk, tm, tn } = cfg;
  const tx = bn / tn;
  const ty = bm / tm;
  const wg = tx * ty;
  const S = half ? 'f16' : 'f32';
  const aPer = (bm * bk) / wg;
  const bPer = (bk * bn) / wg;
  const aVec = bm / 4 + 1; // vec4s per staged row of A (one of padding)
  const bVec = bn / 4 + 1;
  const cv = tn / 4; // vec4 accumulators per row
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  // Staging of slab elements e = lid + q·256 of op(A) and op(B) for one stored layout (t: transposed),
  // into the registers sa/sb (fetch) or from them into workgroup memory (store).
  const each = (count: number, indent: string, body: (e: string) => string) =>
    emit(`${indent}for (var q = 0u; q < ${count}u; q++) { let e = lid + q * ${wg}u; ${body('e')} }`);
  const fetchA = (t: boolean, indent: string) =>
    each(aPer, indent, (e) => {
      const ix = slabIndexA(e, bm, bk, t);
      return `sa[q] = ${S}(load_a_${t ? 't' : 'n'}(row0 + ${ix.row}, k0 + ${ix.p}));`;
    });
  const fetchB = (t: boolean, indent: string) =>
    each(bPer, indent, (e) => {
      const ix = slabIndexB(e, bk, bn, t);
      return `sb[q] = ${S}(load_b_${t ? 't' : 'n'}(k0 + ${ix.p}, col0 + ${ix.col}));`;
    });
  const storeA = (t: boolean, indent: string) =>
    each(aPer, indent, (e) => {
      const ix = slabIndexA(e, bm, bk, t);
      return `let r = ${ix.row}; As[(${ix.p}) * ${aVec}u + r / 4u][r % 4u] = sa[q];`;
    });
  const storeB = (t: boolean, indent: string) =>
    each(bPer, indent, (e) => {
      const ix = slabIndexB(e, bk, bn, t);
      return `let c = ${ix.col}; Bs[(${ix.p}) * ${bVec}u + c / 4u][c % 4u] = sb[q];`;
    });
  // The layout is a uniform branch around each staging step (one kernel serves all four layouts).
  const perLayout = (which: 'a' | 'b', body: (t: boolean, indent: string) => void, indent: string) => {
    emit(`${indent}if (P.trans_${which} != 0u) {`);
    body(true, indent + '  ');
    emit(`${indent}} else {`);
    body(false, indent + '  ');
    emit(`${indent}}`);
  };

  emit(half ? 'enable f16;' : '');
  emit(preamble());
  emit(`var<workgroup> As: array<vec4<${S}>, ${bk * aVec}>;`);
  emit(`var<workgroup> Bs: array<vec4<${S}>, ${bk * bVec}>;`);
  emit(`@compute @workgroup_size(${wg})`);
  emit(`fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {`);
  emit(`  let t = wid.y * P.grid_x + wid.x;`);
  emit(`  if (t >= P.tiles_m * P.tiles_n) { return; }`);
  emit(`  let blk = block_of(t);`);
  emit(`  let row0 = blk.x * ${bm}u;`);
  emit(`  let col0 = blk.y * ${bn}u;`);
  emit(`  let tx = lid % ${tx}u;`);
  emit(`  let ty = lid / ${tx}u;`);
  // Accumulators are named variables, never indexed by a loop counter: a dynamically indexed private
  // array can be demoted to local memory.
  for (let i = 0; i < tm; i++) emit(`  ${Array.from({ length: cv }, (_, h) => `var c${i}_${h} = vec4<f32>();`).join(' ')}`);
  emit(`  var sa: array<${S}, ${aPer}>;`);
  emit(`  var sb: array<${S}, ${bPer}>;`);
  emit(`  var k0 = 0u;`);
  perLayout('a', fetchA, '  ');
  perLayout('b', fetchB, '  ');
  emit(`  let slabs = (P.k + ${bk - 1}u) / ${bk}u;`);
  emit(`  for (var s = 0u; s < slabs; s++) {`);
  perLayout('a', storeA, '    ');
  perLayout('b', storeB, '    ');
  emit(`    workgroupBarrier();`);
  emit(`    k0 += ${bk}u;`);
  emit(`    if (s + 1u < slabs) {`);
  perLayout('a', fetchA, '      ');
  perLayout('b', fetchB, '      ');
  emit(`    }`);
  emit(`    for (var p = 0u; p < ${bk}u; p++) {`);
  for (let g = 0; g < tm / 4; g++) emit(`      let a${g} = vec4<f32>(As[p * ${aVec}u + ${g * ty}u + ty]);`);
  for (let h = 0; h < cv; h++) emit(`      let b${h} = vec4<f32>(Bs[p * ${bVec}u + ${h * tx}u + tx]);`);
  for (let i = 0; i < tm; i++) {
    const g = Math.floor(i / 4);
    const r = 'xyzw'[i % 4];
    for (let h = 0; h < cv; h++) emit(`      c${i}_${h} = fma(vec4<f32>(a${g}.${r}), b${h}, c${i}_${h});`);
  }
  emit(`    }`);
  emit(`    workgroupBarrier();`);
  emit(`  }`);
  // Write-out: one loop over the patch (the accumulators copied into an array once; the loop keeps the
  // shader short, which is what a CPU Vulkan driver's compile time scales with).
  emit(
    `  let out = array<vec4<f32>, ${tm * cv}>(${Array.from({ length: tm * cv }, (_, x) => `c${Math.floor(x / cv)}_${x % cv}`).join(', ')});`,
  );
  emit(`  for (var x = 0u; x < ${tm * cv}u; x++) {`);
  emit(`    let i = x / ${cv}u;`);
  emit(`    let h = x % ${cv}u;`);
  emit(`    put4(row0 + (i / 4u) * ${4 * ty}u + 4u * ty + i % 4u, col0 + h * ${4 * tx}u + 4u * tx, out[x]);`);
  emit(`  }`);
  emit(`}`);
  return { name: `matmul_${S}_${bm}x${bn}x${bk}_${tm}x${tn}`, bindings: ['read', 'read', 'rw'], code: lines.join('\n') };
}

// ─── 'f16-matrix': subgroup matrices (tensor cores) ─────────────────────────────────────────────────

/**
 * Block BM×BN over SGR×SGC subgroups of 32 invocations; each subgroup owns FR×FC result tiles of 16×16,
 * so BM = 16·FR·SGR and BN = 16·FC·SGC. Slabs are BK = 32 deep (two 16-deep fragment steps).
 */
interface MatrixBlock {
  readonly bm: number;
  readonly bn: number;
  readonly sgr: number;
  readonly sgc: number;
  readonly fr: number;
  readonly fc: number;
}

const MATRIX_BLOCKS: Record<'large' | 'small', MatrixBlock> = {
  large: { bm: 128, bn: 128, sgr: 2, sgc: 4, fr: 4, fc: 2 },
  small: { bm: 64, bn: 64, sgr: 2, sgc: 2, fr: 2, fc: 2 },
};

const MATRIX_BK = 32;
/** f16 elements of padding per staged row (keeps rows 16-byte aligned, shifts banks). */
const MATRIX_PAD = 8;

/**
 * Staged slabs keep the stored layout (so staging is a plain, coalesced copy with f32→f16 rounding):
 *   A: As[row][p] (row stride BK+8), or As[p][row] when transA, loaded as a column-major left matrix;
 *   B: Bs[p][col] (row stride BN+8), or Bs[col][p] when transB, loaded as a column-major right matrix.
 * Results go out through a per-subgroup 16×16 f32 scratch with bounds checks, α and accumulation;
 * a block entirely inside C with α = 1 (and n a multiple of 8) stores straight to C instead, its
 * accumulators starting from C when accumulating.
 */
function matrixKernelSource(cfg: MatrixBlock, transA: boolean, transB: boolean): KernelSpec {
  const { bm, bn, sgr, sgc, fr, fc } = cfg;
  const bk = MATRIX_BK;
  const nsg = sgr * sgc;
  const wg = 32 * nsg;
  const aPer = (bm * bk) / wg;
  const bPer = (bk * bn) / wg;
  const aLd = (transA ? bm : bk) + MATRIX_PAD; // row length of As
  const bLd = (transB ? bk : bn) + MATRIX_PAD;
  const aSize = (transA ? bk : bm) * aLd;
  const bSize = (transB ? bn : bk) * bLd;
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const RES = 'subgroup_matrix_result<f32, 16, 16>';
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  const aIdx = (q: number) => slabIndexA(`lid + ${q * wg}u`, bm, bk, transA);
  const bIdx = (q: number) => slabIndexB(`lid + ${q * wg}u`, bk, bn, transB);
  const fetch = (indent: string) => {
    for (let q = 0; q < aPer; q++) {
      const { row, p } = aIdx(q);
      emit(`${indent}sa${q} = f16(load_a_${transA ? 't' : 'n'}(row0 + ${row}, k0 + ${p}));`);
    }
    for (let q = 0; q < bPer; q++) {
      const { p, col } = bIdx(q);
      emit(`${indent}sb${q} = f16(load_b_${transB ? 't' : 'n'}(k0 + ${p}, col0 + ${col}));`);
    }
  };
  const store = (indent: string) => {
    for (let q = 0; q < aPer; q++) {
      const { row, p } = aIdx(q);
      emit(`${indent}As[${transA ? `(${p}) * ${aLd}u + ${row}` : `(${row}) * ${aLd}u + ${p}`}] = sa${q};`);
    }
    for (let q = 0; q < bPer; q++) {
      const { p, col } = bIdx(q);
      emit(`${indent}Bs[${transB ? `(${col}) * ${bLd}u + ${p}` : `(${p}) * ${bLd}u + ${col}`}] = sb${q};`);
    }
  };
  // Offsets of the fragment (16 rows from `r`, 16 deep from `p`) of op(A) and (16 deep, 16 cols) of op(B) in the slabs.
  const aOff = (r: string, p: string) => (transA ? `${p} * ${aLd}u + ${r}` : `${r} * ${aLd}u + ${p}`);
  const bOff = (p: string, c: string) => (transB ? `${c} * ${bLd}u + ${p}` : `${p} * ${bLd}u + ${c}`);

  emit('enable f16;');
  emit('enable chromium_experimental_subgroup_matrix;');
  // Subgroup matrix calls must be subgroup-uniform; WGSL can only prove workgroup uniformity, and the
  // fragment offsets depend on the subgroup index (uniform within each subgroup).
  emit('diagnostic(off, chromium.subgroup_matrix_uniformity);');
  emit(preamble());
  emit(`var<workgroup> As: array<f16, ${aSize}>;`);
  emit(`var<workgroup> Bs: array<f16, ${bSize}>;`);
  emit(`var<workgroup> Cs: array<f32, ${nsg * 256}>;`);
  emit(`@compute @workgroup_size(${wg})`);
  emit(`fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {`);
  emit(`  let t = wid.y * P.grid_x + wid.x;`);
  emit(`  if (t >= P.tiles_m * P.tiles_n) { return; }`);
  emit(`  let blk = block_of(t);`);
  emit(`  let row0 = blk.x * ${bm}u;`);
  emit(`  let col0 = blk.y * ${bn}u;`);
  emit(`  let sg = lid / 32u;`);
  emit(`  let lane = lid % 32u;`);
  emit(`  let sr = (sg / ${sgc}u) * ${16 * fr}u; // first row of this subgroup's tiles in the block`);
  emit(`  let sc = (sg % ${sgc}u) * ${16 * fc}u;`);
  emit(`  let direct = row0 + ${bm}u <= P.m && col0 + ${bn}u <= P.n && P.alpha == 1.0 && P.n % 8u == 0u;`);
  for (let i = 0; i < fr; i++) for (let j = 0; j < fc; j++) emit(`  var acc${i}_${j} = ${RES}();`);
  emit(`  if (direct && P.accumulate != 0u) {`);
  for (let i = 0; i < fr; i++) {
    for (let j = 0; j < fc; j++) {
      emit(`    acc${i}_${j} = subgroupMatrixLoad<${RES}>(&C, (row0 + sr + ${16 * i}u) * P.n + col0 + sc + ${16 * j}u, false, P.n);`);
    }
  }
  emit(`  }`);
  emit(`  ${Array.from({ length: aPer }, (_, q) => `var sa${q}: f16;`).join(' ')}`);
  emit(`  ${Array.from({ length: bPer }, (_, q) => `var sb${q}: f16;`).join(' ')}`);
  emit(`  var k0 = 0u;`);
  fetch('  ');
  emit(`  let slabs = (P.k + ${bk - 1}u) / ${bk}u;`);
  emit(`  for (var s = 0u; s < slabs; s++) {`);
  store('    ');
  emit(`    workgroupBarrier();`);
  emit(`    k0 += ${bk}u;`);
  emit(`    if (s + 1u < slabs) {`);
  fetch('      ');
  emit(`    }`);
  for (let ks = 0; ks < bk; ks += 16) {
    for (let i = 0; i < fr; i++)
      emit(`    let l${ks}_${i} = subgroupMatrixLoad<${L}>(&As, ${aOff(`(sr + ${16 * i}u)`, `${ks}u`)}, ${transA}, ${aLd}u);`);
    for (let j = 0; j < fc; j++)
      emit(`    let r${ks}_${j} = subgroupMatrixLoad<${R}>(&Bs, ${bOff(`${ks}u`, `(sc + ${16 * j}u)`)}, ${transB}, ${bLd}u);`);
    for (let i = 0; i < fr; i++)
      for (let j = 0; j < fc; j++) emit(`    acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${ks}_${i}, r${ks}_${j}, acc${i}_${j});`);
  }
  emit(`    workgroupBarrier();`);
  emit(`  }`);
  emit(`  if (direct) {`);
  for (let i = 0; i < fr; i++) {
    for (let j = 0; j < fc; j++) {
      emit(`    subgroupMatrixStore(&C, (row0 + sr + ${16 * i}u) * P.n + col0 + sc + ${16 * j}u, acc${i}_${j}, false, P.n);`);
    }
  }
  emit(`  } else {`);
  for (let i = 0; i < fr; i++) {
    for (let j = 0; j < fc; j++) {
      emit(`    subgroupMatrixStore(&Cs, sg * 256u, acc${i}_${j}, false, 16u);`);
      emit(`    workgroupBarrier();`);
      emit(
        `    for (var e = lane; e < 256u; e += 32u) { put(row0 + sr + ${16 * i}u + e / 16u, col0 + sc + ${16 * j}u + e % 16u, Cs[sg * 256u + e]); }`,
      );
      emit(`    workgroupBarrier();`);
    }
  }
  emit(`  }`);
  emit(`}`);
  const layout = `${transA ? 't' : 'n'}${transB ? 't' : 'n'}`;
  return {
    name: `matmul_${layout}_f16mx_${bm}x${bn}x${bk}_${sgr}x${sgc}sg_${fr}x${fc}`,
    bindings: ['read', 'read', 'rw'],
    code: lines.join('\n'),
  };
}

/** The WGSL of every kernel variant (for compile checks and reading). */
export function matmulKernelSpecs(): KernelSpec[] {
  const specs: KernelSpec[] = [];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const size of ['large', 'small'] as const) specs.push(matrixKernel(MATRIX_BLOCKS[size], transA, transB));
    }
  }
  for (const size of ['large', 'small'] as const) specs.push(tiledKernel(TILED_BLOCKS[size], false), tiledKernel(TILED_BLOCKS[size], true));
  return specs;
}

/** `tiledKernelSource`, cached by its arguments. */
const tiledKernel = memoizeSpec(tiledKernelSource);

/** `matrixKernelSource`, cached by its arguments. */
const matrixKernel = memoizeSpec(matrixKernelSource);
