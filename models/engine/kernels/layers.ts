/**
 * Element-wise and row-wise layers of the transformer's training step and of decoding, forward and
 * backward, as WGSL compute kernels (all f32, row-major). N tokens (rows), model width d, vocabulary V,
 * FFN width f. Every reduction runs in a fixed order (per-thread serial sums, then fixed binary trees
 * in workgroup memory), so each result is the same bit for bit on every run; no float atomics.
 *
 * Embedding.   out[r, :] = E[ids[r], :]  (zeros for an id outside [0, V)).
 *   Backward:  dE[v, :] += Σ_{r : ids[r] = v} dOut[r, :].  The host groups the rows by id (CSR:
 *   `buildTokenIndex`); one workgroup per distinct id adds its rows in a fixed order (four interleaved
 *   partial sums over the rows in ascending order, then (a₀ + a₁) + (a₂ + a₃)). An id that fills a
 *   large share of the batch serialises on one workgroup (a hot id could be split into segments with a second reduction stage).
 *
 * RMSNorm.     ρ_r = 1/√(mean_c x_rc² + ε),   y_rc = x_rc · ρ_r · g_c.
 *   Backward:  with h_rc = g_c · dy_rc,
 *              dx_rc = ρ_r h_rc − x_rc ρ_r³ · (1/d) Σ_c x_rc h_rc          (= ∂L/∂x through ρ_r too)
 *              dg_c += Σ_r dy_rc · x_rc · ρ_r.
 *   A row is one workgroup of T threads (several rows per 256-thread workgroup when d is small).
 *
 * SwiGLU.      σ(a) = 1/(1+e^{−a}), evaluated as (a ≥ 0 ? 1 : e)/(1 + e) with e = e^{−|a|} (no overflow),
 *              out = silu(a)·b = a σ(a) b;   da = dy · b · σ(a)(1 + a(1 − σ(a))),   db = dy · a σ(a).
 *
 * Column sums (bias gradients, dg). Σ_r x_rc in two stages: blocks of B rows give partial[k, c]
 *   (each thread one column, rows in order), then out[c] (+)= Σ_k partial[k, c] in a fixed order.
 *   B = max(32, ⌈N/256⌉), so there are at most 256 blocks; with one block the first stage writes out.
 *
 * Token log-probs. z = logits / τ (computed as logits · (1/τ), like the tfjs reference),
 *   one workgroup per row, one pass over V with an online max m and sum s = Σ e^{z_j − m}, four ids
 *   per step (a new maximum rescales s by e^{m_old − m_new}); per-thread states merge in a tree:
 *   (m₁,s₁) ⊕ (m₂,s₂) = (m, s₁e^{m₁−m} + s₂e^{m₂−m}), m = max(m₁,m₂).
 *              lse = m + log s,    log p_t = (z_t − m) − log s,
 *   and with t = Σ e^{z_j−m}(z_j − m) carried along (t ← (t + s(m_old − m_new)) e^{m_old−m_new}),
 *              H = −Σ p log p = log s − t/s.
 *   Backward:  ∂ log p_t/∂ logits_j = (1[j = t] − p_j)/τ, so dLogits_rj = dlp_r (1[j=t_r] − e^{z_j − lse_r})/τ.
 *
 * Sampling (decoding). One workgroup per row, with p_j = e^{z_j − m} (unnormalised, p_argmax = 1):
 *   1. top-p nucleus (topP < 1): the smallest set of most probable tokens (ties: lower id first) with
 *      mass ≥ T = topP·Σp. Its boundary is found on exact input bits: κ_j = an order-preserving u32 key
 *      of logit_j (p is monotone in it), and τ = the largest key with M(τ) = Σ_{κ_j ≥ τ} p_j ≥ T, by a
 *      radix search of 4 bits a pass (each pass over V fills 16 buckets; 8 passes). Kept: κ_j > τ, and of
 *      the ties κ_j = τ the first c by id, c = ⌈(T − M(τ+1))/p_τ⌉. topP = 1 keeps everything.
 *      (Keys of p itself would differ between passes where a compiler contracts z − m into an FMA.)
 *   2. inverse CDF over the kept weights in ascending id order: the smallest j whose cumulative weight
 *      exceeds u·Σw. Level 0 gives each thread a contiguous chunk of ⌈V/256⌉ ids, the chunk sums are
 *      prefix-summed (two levels of 16 serial steps, monotone in the thread index, so exactly one
 *      chunk crosses), level 1 splits the crossing chunk over the threads again, and the thread whose
 *      piece crosses walks its ≤ ⌈V/256²⌉ ids. The kept ties before a point are the first
 *      min(c, ties so far), so the cumulative weight needs only the prefix sums of (Σ_{κ > τ} p, #ties).
 *      u·Σw is held strictly below Σw, so a crossing exists whenever Σw > 0 (else token −1).
 *   The log-prob returned is that of the full distribution, (z_tok − m) − log Σp. With topP = 1 the
 *   level-0 pass also computes m and Σp (online per chunk): sampling reads V about once; topP < 1
 *   costs about 10 passes over V.
 * Barriers are kept few in the row kernels: each costs the software Vulkan of the tests (lavapipe)
 * seconds of shader compilation.
 */
import { f, spread, u, type DType, type KernelSpec, type Recorder, type Runtime, type Tensor, memoizeSpec } from '../runtime.js';

/** Invocations per workgroup of every kernel here. */
const WG = 256;

// ---------------------------------------------------------------------------------------------
// Validation

function checkTensor(fn: string, name: string, t: Tensor, size: number, dtype: DType = 'f32'): void {
  if (t.dtype !== dtype) throw new RangeError(`${fn}: '${name}' must be ${dtype}, got ${t.dtype} ('${t.label}')`);
  if (t.size < size) {
    throw new RangeError(`${fn}: '${name}' ('${t.label}' [${t.shape.join(', ')}]) has ${t.size} elements, needs at least ${size}`);
  }
}

function checkDim(fn: string, name: string, value: number, min = 0): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${fn}: ${name} must be an integer ≥ ${min}, got ${value}`);
}

function checkIndexRange(fn: string, elements: number): void {
  if (elements >= 2 ** 32) throw new RangeError(`${fn}: ${elements} elements exceed the 32-bit indices of the kernel`);
}

function checkTemperature(fn: string, temperature: number): void {
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new RangeError(`${fn}: temperature must be a finite number > 0, got ${temperature}`);
}

/** Workgroups [x, y] for `count` elements, 256 per workgroup. */
function flatGrid(count: number): [number, number] {
  return spread(Math.ceil(count / WG));
}

// ---------------------------------------------------------------------------------------------
// WGSL building blocks

const HEADER = (params: string, bindings: readonly [string, 'read' | 'rw', string][]): string =>
  `struct Params { ${params} }
@group(0) @binding(0) var<uniform> P: Params;
${bindings.map(([name, access, type], k) => `@group(0) @binding(${k + 1}) var<storage, ${access === 'read' ? 'read' : 'read_write'}> ${name}: array<${type}>;`).join('\n')}
`;

/** Entry point of a flat element-wise kernel: `k` is the element index. */
const FLAT_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let k = (wg.y * nwg.x + wg.x) * ${WG}u + li;`;

/** Overflow-safe logistic function. */
/** Logistic function without overflow or a branch: e = e^{−|a|}, σ(a) = (a ≥ 0 ? 1 : e)/(1 + e). */
const SIGMOID = `
fn sigmoid(a: f32) -> f32 {
  let e = exp(-abs(a));
  return select(e, 1.0, a >= 0.0) / (1.0 + e);
}`;

function flatKernel(
  name: string,
  params: string,
  bindings: readonly [string, 'read' | 'rw', string][],
  body: string,
  extra = '',
): KernelSpec {
  return {
    name,
    bindings: bindings.map((b) => b[1]),
    code: `${HEADER(params, bindings)}${extra}
${FLAT_MAIN}
${body}
}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Embedding

const EMBED_FWD = flatKernel(
  'layers_embed_fwd',
  'n: u32, d: u32, vocab: u32',
  [
    ['table', 'read', 'f32'],
    ['ids', 'read', 'i32'],
    ['outp', 'rw', 'f32'],
  ],
  `  if (k >= P.n * P.d) { return; }
  let r = k / P.d;
  let c = k - r * P.d;
  let id = ids[r];
  var v = 0.0;
  if (id >= 0 && u32(id) < P.vocab) { v = table[u32(id) * P.d + c]; }
  outp[k] = v;`,
);

/** out[r] = table[ids[r]] (zeros for an id outside [0, V)). */
export async function embeddingForward(
  rt: Runtime,
  rec: Recorder,
  args: { table: Tensor; ids: Tensor; out: Tensor; n: number; d: number },
): Promise<void> {
  const fn = 'embeddingForward';
  const { table, ids, out, n, d } = args;
  checkDim(fn, 'n', n);
  checkDim(fn, 'd', d, 1);
  if (table.size % d !== 0) throw new RangeError(`${fn}: table '${table.label}' of ${table.size} elements is not [V, ${d}]`);
  const vocab = table.size / d;
  checkTensor(fn, 'ids', ids, n, 'i32');
  checkTensor(fn, 'out', out, n * d);
  checkIndexRange(fn, Math.max(n * d, table.size));
  const kernel = await rt.kernel(EMBED_FWD);
  rec.dispatch(kernel, [table, ids, out], [u(n), u(d), u(vocab)], flatGrid(n * d));
}

/** Rows grouped by token id (CSR), ids ascending; rows of one id ascending. */
export interface TokenIndex {
  /** The distinct in-vocabulary ids, ascending [U]. */
  readonly uniqueIds: Int32Array;
  /** Rows of uniqueIds[k] are positions[starts[k] .. starts[k+1]) [U + 1]. */
  readonly starts: Int32Array;
  /** Row indices grouped by id (length = number of in-vocabulary ids; out-of-range ids are left out). */
  readonly positions: Int32Array;
}

/** Group the rows of `ids` by token id (counting sort, O(N + V)); ids outside [0, vocab) are skipped. */
export function buildTokenIndex(ids: Int32Array, vocab: number): TokenIndex {
  checkDim('buildTokenIndex', 'vocab', vocab, 1);
  const counts = new Int32Array(vocab);
  let valid = 0;
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id >= 0 && id < vocab) {
      counts[id]++;
      valid++;
    }
  }
  let unique = 0;
  for (let v = 0; v < vocab; v++) if (counts[v] > 0) unique++;
  const uniqueIds = new Int32Array(unique);
  const starts = new Int32Array(unique + 1);
  /** Next free slot of each id in positions. */
  const cursor = new Int32Array(vocab);
  let k = 0;
  let start = 0;
  for (let v = 0; v < vocab; v++) {
    if (counts[v] === 0) continue;
    uniqueIds[k] = v;
    starts[k] = start;
    cursor[v] = start;
    start += counts[v];
    k++;
  }
  starts[unique] = start;
  const positions = new Int32Array(valid);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id >= 0 && id < vocab) positions[cursor[id]++] = r;
  }
  return { uniqueIds, starts, positions };
}

const EMBED_BWD: KernelSpec = {
  name: 'layers_embed_bwd',
  bindings: ['read', 'rw', 'read', 'read', 'read'],
  code: `${HEADER('uniqueCount: u32, d: u32, vocab: u32, nRows: u32, posLen: u32', [
    ['dOut', 'read', 'f32'],
    ['dTable', 'rw', 'f32'],
    ['uniqueIds', 'read', 'i32'],
    ['starts', 'read', 'i32'],
    ['positions', 'read', 'i32'],
  ])}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let g = wg.y * nwg.x + wg.x;
  if (g >= P.uniqueCount) { return; }
  let id = uniqueIds[g];
  if (id < 0 || u32(id) >= P.vocab) { return; }
  let s0 = max(starts[g], 0);
  let s1 = min(starts[g + 1u], i32(P.posLen));
  let dst = u32(id) * P.d;
  let last = P.nRows - 1u;
  for (var c = li; c < P.d; c += ${WG}u) {
    // Four interleaved partial sums (rows q ≡ 0, 1, 2, 3 mod 4 of the group) keep four loads in flight.
    var acc = vec4<f32>(0.0);
    var q = s0;
    for (; q + 3 < s1; q += 4) {
      let r = vec4<i32>(positions[q], positions[q + 1], positions[q + 2], positions[q + 3]);
      let ok = (r >= vec4<i32>(0)) & (vec4<u32>(r) < vec4<u32>(P.nRows));
      let rr = min(vec4<u32>(r), vec4<u32>(last));
      let v = vec4<f32>(dOut[rr.x * P.d + c], dOut[rr.y * P.d + c], dOut[rr.z * P.d + c], dOut[rr.w * P.d + c]);
      acc += select(vec4<f32>(0.0), v, ok);
    }
    for (; q < s1; q++) {
      let r = positions[q];
      if (r >= 0 && u32(r) < P.nRows) { acc.x += dOut[u32(r) * P.d + c]; }
    }
    dTable[dst + c] += (acc.x + acc.y) + (acc.z + acc.w);
  }
}`,
};

/** dTable[id] += Σ_{r: ids[r] = id} dOut[r] (rows from `buildTokenIndex`; fixed order, no atomics). */
export async function embeddingBackward(
  rt: Runtime,
  rec: Recorder,
  args: { dOut: Tensor; dTable: Tensor; uniqueIds: Tensor; starts: Tensor; positions: Tensor; uniqueCount: number; d: number },
): Promise<void> {
  const fn = 'embeddingBackward';
  const { dOut, dTable, uniqueIds, starts, positions, uniqueCount, d } = args;
  checkDim(fn, 'uniqueCount', uniqueCount);
  checkDim(fn, 'd', d, 1);
  if (dTable.size % d !== 0) throw new RangeError(`${fn}: dTable '${dTable.label}' of ${dTable.size} elements is not [V, ${d}]`);
  if (dOut.size % d !== 0) throw new RangeError(`${fn}: dOut '${dOut.label}' of ${dOut.size} elements is not [N, ${d}]`);
  checkTensor(fn, 'dOut', dOut, 0);
  checkTensor(fn, 'dTable', dTable, 0);
  checkTensor(fn, 'uniqueIds', uniqueIds, uniqueCount, 'i32');
  checkTensor(fn, 'starts', starts, uniqueCount + 1, 'i32');
  checkTensor(fn, 'positions', positions, 0, 'i32');
  checkIndexRange(fn, Math.max(dOut.size, dTable.size));
  const kernel = await rt.kernel(EMBED_BWD);
  rec.dispatch(
    kernel,
    [dOut, dTable, uniqueIds, starts, positions],
    [u(uniqueCount), u(d), u(dTable.size / d), u(dOut.size / d), u(positions.size)],
    spread(uniqueCount),
  );
}

// ---------------------------------------------------------------------------------------------
// Column sums (two-stage, deterministic)

/** Rows per first-stage block of a column sum over n rows (≤ 256 blocks). */
function rowsPerBlock(n: number): number {
  return Math.max(32, Math.ceil(n / 256));
}

function blockCount(n: number): number {
  return Math.max(1, Math.ceil(n / rowsPerBlock(n)));
}

/** Elements of the `partial` scratch of `columnSum` over [n, c] (0: not needed, one block). */
export function columnSumScratchSize(n: number, c: number): number {
  const blocks = blockCount(n);
  return blocks > 1 ? blocks * c : 0;
}

/** Elements of the `partial` scratch of `rmsNormBackward` over [n, d] (0: not needed). */
export function rmsNormScratchSize(n: number, d: number): number {
  return columnSumScratchSize(n, d);
}

/** First stage: dst[block, col] (+)= Σ_{rows of block} term(r, col). */
function colStage1(name: string, bindings: [string, 'read' | 'rw', string][], term: string): KernelSpec {
  return {
    name,
    bindings: [...bindings.map((b) => b[1]), 'rw'],
    code: `${HEADER('n: u32, c: u32, rowsPerBlock: u32, accumulate: u32', [...bindings, ['dst', 'rw', 'f32']])}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let col = wg.x * ${WG}u + li;
  if (col >= P.c) { return; }
  let block = wg.y;
  let r0 = block * P.rowsPerBlock;
  let r1 = min(P.n, r0 + P.rowsPerBlock);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    let e = r * P.c + col;
    acc += ${term};
  }
  let o = block * P.c + col;
  if (P.accumulate != 0u) { dst[o] += acc; } else { dst[o] = acc; }
}`,
  };
}

const COLSUM_STAGE1 = colStage1('layers_colsum_s1', [['x', 'read', 'f32']], 'x[e]');
const DGAIN_STAGE1 = colStage1(
  'layers_rms_dgain_s1',
  [
    ['dy', 'read', 'f32'],
    ['x', 'read', 'f32'],
    ['rstd', 'read', 'f32'],
  ],
  'dy[e] * x[e] * rstd[r]',
);

/** Second stage: out[col] (+)= Σ_k partial[k, col]; 32 columns × 8 lanes per workgroup. */
const COLSUM_STAGE2: KernelSpec = {
  name: 'layers_colsum_s2',
  bindings: ['read', 'rw'],
  code: `${HEADER('c: u32, blocks: u32, accumulate: u32', [
    ['partial', 'read', 'f32'],
    ['outp', 'rw', 'f32'],
  ])}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let local = li % 32u;
  let lane = li / 32u;
  let col = (wg.y * nwg.x + wg.x) * 32u + local;
  var acc = 0.0;
  if (col < P.c) {
    for (var b = lane; b < P.blocks; b += 8u) { acc += partial[b * P.c + col]; }
  }
  red[li] = acc;
  workgroupBarrier();
  if (lane == 0u && col < P.c) {
    var s = 0.0;
    for (var q = 0u; q < 8u; q++) { s += red[q * 32u + local]; }
    if (P.accumulate != 0u) { outp[col] += s; } else { outp[col] = s; }
  }
}`,
};

async function columnReduce(
  rt: Runtime,
  rec: Recorder,
  fn: string,
  stage1: KernelSpec,
  inputs: Tensor[],
  out: Tensor,
  partial: Tensor | undefined,
  n: number,
  c: number,
  accumulate: boolean,
): Promise<void> {
  if (Math.ceil(c / WG) > 65535) throw new RangeError(`${fn}: ${c} columns are more than one dispatch covers (${65535 * WG})`);
  const blocks = blockCount(n);
  const rpb = rowsPerBlock(n);
  const k1 = await rt.kernel(stage1);
  if (blocks === 1) {
    rec.dispatch(k1, [...inputs, out], [u(n), u(c), u(rpb), u(accumulate ? 1 : 0)], [Math.ceil(c / WG), 1]);
    return;
  }
  const need = blocks * c;
  if (!partial) throw new RangeError(`${fn}: a 'partial' scratch of ${need} f32 is needed for ${n} rows`);
  checkTensor(fn, 'partial', partial, need);
  const k2 = await rt.kernel(COLSUM_STAGE2);
  rec.dispatch(k1, [...inputs, partial], [u(n), u(c), u(rpb), u(0)], [Math.ceil(c / WG), blocks]);
  rec.dispatch(k2, [partial, out], [u(c), u(blocks), u(accumulate ? 1 : 0)], spread(Math.ceil(c / 32)));
}

/** out (+)= Σ_r x[r] over rows of x [n, c] (deterministic two-stage sum; `partial` of columnSumScratchSize). */
export async function columnSum(
  rt: Runtime,
  rec: Recorder,
  args: { x: Tensor; out: Tensor; partial?: Tensor; n: number; c: number; accumulate: boolean },
): Promise<void> {
  const fn = 'columnSum';
  const { x, out, partial, n, c, accumulate } = args;
  checkDim(fn, 'n', n);
  checkDim(fn, 'c', c, 1);
  checkTensor(fn, 'x', x, n * c);
  checkTensor(fn, 'out', out, c);
  checkIndexRange(fn, n * c);
  await columnReduce(rt, rec, fn, COLSUM_STAGE1, [x], out, partial, n, c, accumulate);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

/** Threads per row: a power of two, about d/4, at most 256. */
function rmsThreads(d: number): number {
  let t = 1;
  while (t < WG && t * 4 < d) t *= 2;
  return t;
}

function rmsKernelSource(kind: 'fwd' | 'bwd', T: number): KernelSpec {
  const R = WG / T;
  const fwd = kind === 'fwd';
  const bindings: [string, 'read' | 'rw', string][] = fwd
    ? [
        ['x', 'read', 'f32'],
        ['gain', 'read', 'f32'],
        ['outp', 'rw', 'f32'],
        ['rstd', 'rw', 'f32'],
      ]
    : [
        ['x', 'read', 'f32'],
        ['gain', 'read', 'f32'],
        ['rstd', 'read', 'f32'],
        ['dy', 'read', 'f32'],
        ['dx', 'rw', 'f32'],
      ];
  const term = fwd ? 'let v = x[base + c]; ss += v * v;' : 'ss += x[base + c] * gain[c] * dy[base + c];';
  const finish = fwd
    ? `    let r = inverseSqrt(red[seg * T] / f32(P.d) + P.eps);
    if (lane == 0u) { rstd[row] = r; }
    for (var c = lane; c < P.d; c += T) { outp[base + c] = x[base + c] * r * gain[c]; }`
    : `    let r = rstd[row];
    let coef = r * r * r * red[seg * T] / f32(P.d);
    for (var c = lane; c < P.d; c += T) {
      let v = r * gain[c] * dy[base + c] - x[base + c] * coef;
      if (P.accumulate != 0u) { dx[base + c] += v; } else { dx[base + c] = v; }
    }`;
  return {
    name: `layers_rms_${kind}_t${T}`,
    bindings: bindings.map((b) => b[1]),
    code: `${HEADER(fwd ? 'n: u32, d: u32, eps: f32' : 'n: u32, d: u32, accumulate: u32', bindings)}
const T: u32 = ${T}u;
const R: u32 = ${R}u;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let group = wg.y * nwg.x + wg.x;
  if (group * R >= P.n) { return; }
  let seg = li / T;
  let lane = li % T;
  let row = group * R + seg;
  let valid = row < P.n;
  let base = row * P.d;
  var ss = 0.0;
  if (valid) {
    for (var c = lane; c < P.d; c += T) { ${term} }
  }
  red[li] = ss;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  if (valid) {
${finish}
  }
}`,
  };
}

/** rstd = 1/√(mean(x²) + eps), out = x · rstd · gain, row by row. */
export async function rmsNormForward(
  rt: Runtime,
  rec: Recorder,
  args: { x: Tensor; gain: Tensor; out: Tensor; rstd: Tensor; n: number; d: number; eps: number },
): Promise<void> {
  const fn = 'rmsNormForward';
  const { x, gain, out, rstd, n, d, eps } = args;
  checkDim(fn, 'n', n);
  checkDim(fn, 'd', d, 1);
  checkTensor(fn, 'x', x, n * d);
  checkTensor(fn, 'gain', gain, d);
  checkTensor(fn, 'out', out, n * d);
  checkTensor(fn, 'rstd', rstd, n);
  checkIndexRange(fn, n * d);
  if (!(eps >= 0)) throw new RangeError(`${fn}: eps must be ≥ 0, got ${eps}`);
  const T = rmsThreads(d);
  const kernel = await rt.kernel(rmsKernel('fwd', T));
  rec.dispatch(kernel, [x, gain, out, rstd], [u(n), u(d), f(eps)], spread(Math.ceil(n / (WG / T))));
}

/**
 * dx = rstd·(g∘dy) − x·rstd³·mean(x∘g∘dy) (overwritten, or added when accumulateDx) and
 * dGain += Σ_rows dy∘x·rstd (two-stage, `partial` of rmsNormScratchSize(n, d) elements).
 */
export async function rmsNormBackward(
  rt: Runtime,
  rec: Recorder,
  args: {
    x: Tensor;
    gain: Tensor;
    rstd: Tensor;
    dOut: Tensor;
    dx: Tensor;
    dGain: Tensor;
    partial?: Tensor;
    n: number;
    d: number;
    accumulateDx: boolean;
  },
): Promise<void> {
  const fn = 'rmsNormBackward';
  const { x, gain, rstd, dOut, dx, dGain, partial, n, d, accumulateDx } = args;
  checkDim(fn, 'n', n);
  checkDim(fn, 'd', d, 1);
  checkTensor(fn, 'x', x, n * d);
  checkTensor(fn, 'gain', gain, d);
  checkTensor(fn, 'rstd', rstd, n);
  checkTensor(fn, 'dOut', dOut, n * d);
  checkTensor(fn, 'dx', dx, n * d);
  checkTensor(fn, 'dGain', dGain, d);
  checkIndexRange(fn, n * d);
  const T = rmsThreads(d);
  const kernel = await rt.kernel(rmsKernel('bwd', T));
  rec.dispatch(kernel, [x, gain, rstd, dOut, dx], [u(n), u(d), u(accumulateDx ? 1 : 0)], spread(Math.ceil(n / (WG / T))));
  await columnReduce(rt, rec, fn, DGAIN_STAGE1, [dOut, x, rstd], dGain, partial, n, d, true);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU and element-wise arithmetic

const SWIGLU_FWD = flatKernel(
  'layers_swiglu_fwd',
  'count: u32',
  [
    ['gate', 'read', 'f32'],
    ['up', 'read', 'f32'],
    ['outp', 'rw', 'f32'],
  ],
  `  if (k >= P.count) { return; }
  let a = gate[k];
  outp[k] = a * sigmoid(a) * up[k];`,
  SIGMOID,
);

const SWIGLU_BWD = flatKernel(
  'layers_swiglu_bwd',
  'count: u32',
  [
    ['gate', 'read', 'f32'],
    ['up', 'read', 'f32'],
    ['dy', 'read', 'f32'],
    ['dGate', 'rw', 'f32'],
    ['dUp', 'rw', 'f32'],
  ],
  `  if (k >= P.count) { return; }
  let a = gate[k];
  let s = sigmoid(a);
  let g = dy[k];
  dGate[k] = g * up[k] * s * (1.0 + a * (1.0 - s));
  dUp[k] = g * a * s;`,
  SIGMOID,
);

/** out = silu(gate) · up, element-wise over `count` elements. */
export async function swigluForward(
  rt: Runtime,
  rec: Recorder,
  args: { gate: Tensor; up: Tensor; out: Tensor; count: number },
): Promise<void> {
  const fn = 'swigluForward';
  const { gate, up, out, count } = args;
  checkDim(fn, 'count', count);
  for (const [name, t] of [
    ['gate', gate],
    ['up', up],
    ['out', out],
  ] as const)
    checkTensor(fn, name, t, count);
  checkIndexRange(fn, count);
  rec.dispatch(await rt.kernel(SWIGLU_FWD), [gate, up, out], [u(count)], flatGrid(count));
}

/** dGate = dOut·up·σ(g)(1 + g(1−σ(g))), dUp = dOut·silu(g) (both overwritten). */
export async function swigluBackward(
  rt: Runtime,
  rec: Recorder,
  args: { gate: Tensor; up: Tensor; dOut: Tensor; dGate: Tensor; dUp: Tensor; count: number },
): Promise<void> {
  const fn = 'swigluBackward';
  const { gate, up, dOut, dGate, dUp, count } = args;
  checkDim(fn, 'count', count);
  for (const [name, t] of [
    ['gate', gate],
    ['up', up],
    ['dOut', dOut],
    ['dGate', dGate],
    ['dUp', dUp],
  ] as const)
    checkTensor(fn, name, t, count);
  checkIndexRange(fn, count);
  rec.dispatch(await rt.kernel(SWIGLU_BWD), [gate, up, dOut, dGate, dUp], [u(count)], flatGrid(count));
}

const ADD_INTO = flatKernel(
  'layers_add_into',
  'count: u32, alpha: f32',
  [
    ['x', 'read', 'f32'],
    ['y', 'rw', 'f32'],
  ],
  `  if (k >= P.count) { return; }
  y[k] += P.alpha * x[k];`,
);

const SCALE = flatKernel(
  'layers_scale',
  'count: u32, alpha: f32',
  [['x', 'rw', 'f32']],
  `  if (k >= P.count) { return; }
  x[k] *= P.alpha;`,
);

const ADD_BIAS = flatKernel(
  'layers_add_bias',
  'n: u32, c: u32',
  [
    ['x', 'rw', 'f32'],
    ['bias', 'read', 'f32'],
  ],
  `  if (k >= P.n * P.c) { return; }
  let r = k / P.c;
  x[k] += bias[k - r * P.c];`,
);

/** y += alpha · x over `count` elements (alpha defaults to 1). */
export async function addInto(rt: Runtime, rec: Recorder, args: { x: Tensor; y: Tensor; count: number; alpha?: number }): Promise<void> {
  const fn = 'addInto';
  const { x, y, count, alpha = 1 } = args;
  checkDim(fn, 'count', count);
  checkTensor(fn, 'x', x, count);
  checkTensor(fn, 'y', y, count);
  checkIndexRange(fn, count);
  rec.dispatch(await rt.kernel(ADD_INTO), [x, y], [u(count), f(alpha)], flatGrid(count));
}

/** x *= alpha over `count` elements. */
export async function scaleInPlace(rt: Runtime, rec: Recorder, args: { x: Tensor; count: number; alpha: number }): Promise<void> {
  const fn = 'scaleInPlace';
  const { x, count, alpha } = args;
  checkDim(fn, 'count', count);
  checkTensor(fn, 'x', x, count);
  checkIndexRange(fn, count);
  rec.dispatch(await rt.kernel(SCALE), [x], [u(count), f(alpha)], flatGrid(count));
}

/** x[r] += bias for each row r of x [n, c]. */
export async function addBias(rt: Runtime, rec: Recorder, args: { x: Tensor; bias: Tensor; n: number; c: number }): Promise<void> {
  const fn = 'addBias';
  const { x, bias, n, c } = args;
  checkDim(fn, 'n', n);
  checkDim(fn, 'c', c, 1);
  checkTensor(fn, 'x', x, n * c);
  checkTensor(fn, 'bias', bias, c);
  checkIndexRange(fn, n * c);
  rec.dispatch(await rt.kernel(ADD_BIAS), [x, bias], [u(n), u(c)], flatGrid(n * c));
}

// ---------------------------------------------------------------------------------------------
// Token log-probs

function logProbsKernelSource(entropy: boolean): KernelSpec {
  const bindings: [string, 'read' | 'rw', string][] = [
    ['logits', 'read', 'f32'],
    ['targets', 'read', 'i32'],
    ['logProbs', 'rw', 'f32'],
    ['lse', 'rw', 'f32'],
  ];
  if (entropy) bindings.push(['entropy', 'rw', 'f32']);
  const E = (s: string): string => (entropy ? s : '');
  return {
    name: entropy ? 'layers_token_logprobs_ent' : 'layers_token_logprobs',
    bindings: bindings.map((b) => b[1]),
    code: `${HEADER('rows: u32, vocab: u32, invT: f32', bindings)}
var<workgroup> sm: array<f32, ${WG}>;
var<workgroup> ss: array<f32, ${WG}>;
${E(`var<workgroup> st: array<f32, ${WG}>;`)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= P.rows) { return; }
  let V = P.vocab;
  let base = row * V;
  var m = -3.0e38;
  var s = 0.0;
  ${E('var t = 0.0;')}
  // Four ids per step (j, j + 256, j + 512, j + 768): four loads in flight, one rescale per step at most.
  for (var j = li; j < V; j += ${4 * WG}u) {
    let jj = vec4<u32>(j, j + ${WG}u, j + ${2 * WG}u, j + ${3 * WG}u);
    let ok = jj < vec4<u32>(V);
    let jc = min(jj, vec4<u32>(V - 1u));
    let raw = vec4<f32>(logits[base + jc.x], logits[base + jc.y], logits[base + jc.z], logits[base + jc.w]);
    let z = select(vec4<f32>(-3.0e38), raw * P.invT, ok);
    let mx = max(max(z.x, z.y), max(z.z, z.w));
    if (mx > m) {
      let a = exp(m - mx);
      ${E('t = (t + s * (m - mx)) * a;')}
      s = s * a;
      m = mx;
    }
    let e = select(vec4<f32>(0.0), exp(z - m), ok);
    s += (e.x + e.y) + (e.z + e.w);
    ${E('let te = select(vec4<f32>(0.0), e * (z - m), e > vec4<f32>(0.0));')}
    ${E('t += (te.x + te.y) + (te.z + te.w);')}
  }
  sm[li] = m;
  ss[li] = s;
  ${E('st[li] = t;')}
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h = h / 2u) {
    if (li < h) {
      let m1 = sm[li];
      let m2 = sm[li + h];
      let s1 = ss[li];
      let s2 = ss[li + h];
      let mm = max(m1, m2);
      let a1 = exp(m1 - mm);
      let a2 = exp(m2 - mm);
      sm[li] = mm;
      ss[li] = s1 * a1 + s2 * a2;
      ${E('st[li] = (st[li] + s1 * (m1 - mm)) * a1 + (st[li + h] + s2 * (m2 - mm)) * a2;')}
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let M = sm[0];
    let S = ss[0];
    let logS = log(S);
    lse[row] = M + logS;
    let tg = targets[row];
    var lp = 0.0;
    if (tg >= 0 && u32(tg) < V) { lp = (logits[base + u32(tg)] * P.invT - M) - logS; }
    logProbs[row] = lp;
    ${E('entropy[row] = logS - st[0] / S;')}
  }
}`,
  };
}

/**
 * With z = logits/temperature: lse = logsumexp(z), logProbs[r] = z[targets[r]] − lse (0 for a target
 * outside [0, V)), and entropy = −Σ p log p when `entropy` is given. One workgroup per row.
 */
export async function tokenLogProbs(
  rt: Runtime,
  rec: Recorder,
  args: {
    logits: Tensor;
    targets: Tensor;
    rows: number;
    vocab: number;
    temperature: number;
    logProbs: Tensor;
    lse: Tensor;
    entropy?: Tensor;
  },
): Promise<void> {
  const fn = 'tokenLogProbs';
  const { logits, targets, rows, vocab, temperature, logProbs, lse, entropy } = args;
  checkDim(fn, 'rows', rows);
  checkDim(fn, 'vocab', vocab, 1);
  checkTemperature(fn, temperature);
  checkTensor(fn, 'logits', logits, rows * vocab);
  checkTensor(fn, 'targets', targets, rows, 'i32');
  checkTensor(fn, 'logProbs', logProbs, rows);
  checkTensor(fn, 'lse', lse, rows);
  if (entropy) checkTensor(fn, 'entropy', entropy, rows);
  checkIndexRange(fn, rows * vocab);
  const kernel = await rt.kernel(logProbsKernel(entropy !== undefined));
  const tensors = entropy ? [logits, targets, logProbs, lse, entropy] : [logits, targets, logProbs, lse];
  rec.dispatch(kernel, tensors, [u(rows), u(vocab), f(1 / temperature)], spread(rows));
}

const LOGPROBS_BWD: KernelSpec = {
  name: 'layers_token_logprobs_bwd',
  bindings: ['read', 'read', 'read', 'read', 'rw'],
  code: `${HEADER('rows: u32, vocab: u32, invT: f32', [
    ['logits', 'read', 'f32'],
    ['targets', 'read', 'i32'],
    ['lse', 'read', 'f32'],
    ['dlp', 'read', 'f32'],
    ['dLogits', 'rw', 'f32'],
  ])}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.z * nwg.y + wg.y;
  if (row >= P.rows) { return; }
  let V = P.vocab;
  let base = row * V;
  let g = dlp[row];
  let l = lse[row];
  let tg = targets[row];
  for (var q = 0u; q < 4u; q++) {
    let j = wg.x * ${4 * WG}u + q * ${WG}u + li;
    if (j < V) {
      var v = 0.0;
      if (g != 0.0) {
        let p = exp(logits[base + j] * P.invT - l);
        let hit = select(0.0, 1.0, i32(j) == tg);
        v = g * (hit - p) * P.invT;
      }
      dLogits[base + j] = v;
    }
  }
}`,
};

/** dLogits[r, j] = dLogProbs[r]·(1[j = target] − softmax(z)_j)/temperature (overwritten; zeros where dLogProbs is 0). */
export async function tokenLogProbsBackward(
  rt: Runtime,
  rec: Recorder,
  args: {
    logits: Tensor;
    targets: Tensor;
    lse: Tensor;
    dLogProbs: Tensor;
    dLogits: Tensor;
    rows: number;
    vocab: number;
    temperature: number;
  },
): Promise<void> {
  const fn = 'tokenLogProbsBackward';
  const { logits, targets, lse, dLogProbs, dLogits, rows, vocab, temperature } = args;
  checkDim(fn, 'rows', rows);
  checkDim(fn, 'vocab', vocab, 1);
  checkTemperature(fn, temperature);
  checkTensor(fn, 'logits', logits, rows * vocab);
  checkTensor(fn, 'targets', targets, rows, 'i32');
  checkTensor(fn, 'lse', lse, rows);
  checkTensor(fn, 'dLogProbs', dLogProbs, rows);
  checkTensor(fn, 'dLogits', dLogits, rows * vocab);
  checkIndexRange(fn, rows * vocab);
  const columnGroups = Math.ceil(vocab / (4 * WG));
  if (columnGroups > 65535) throw new RangeError(`${fn}: vocab ${vocab} is more than one dispatch covers`);
  const [ry, rz] = spread(rows);
  const kernel = await rt.kernel(LOGPROBS_BWD);
  rec.dispatch(kernel, [logits, targets, lse, dLogProbs, dLogits], [u(rows), u(vocab), f(1 / temperature)], [columnGroups, ry, rz]);
}

// ---------------------------------------------------------------------------------------------
// Sampling

const SAMPLE: KernelSpec = {
  name: 'layers_sample_tokens',
  bindings: ['read', 'read', 'rw', 'rw', 'rw'],
  code: `${HEADER('rows: u32, vocab: u32, invT: f32, topP: f32', [
    ['logits', 'read', 'f32'],
    ['uniforms', 'read', 'f32'],
    ['tokens', 'rw', 'i32'],
    ['logProbs', 'rw', 'f32'],
    ['lseOut', 'rw', 'f32'],
  ])}
const WG: u32 = ${WG}u;
const NEG: f32 = -3.0e38;

var<workgroup> hist: array<f32, ${16 * WG}>;  // [bucket][thread] masses of a search pass
var<workgroup> fa: array<f32, ${2 * WG}>;     // f32 scans and reductions
var<workgroup> fb: array<f32, ${WG}>;
var<workgroup> ua: array<u32, ${2 * WG}>;     // u32 scans
var<workgroup> state: array<u32, 4>;        // search: lo, shift
var<workgroup> fstate: array<f32, 4>;       // search: M(lo), M(above the range)
var<workgroup> bc: array<f32, 4>;           // broadcasts
var<workgroup> bcu: array<u32, 4>;

// Logits as order-preserving unsigned keys (the nucleus boundary is searched on these exact input bits).
fn okey(l: f32) -> u32 {
  let b = bitcast<u32>(l);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn unkey(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7FFFFFFFu, (k & 0x80000000u) != 0u));
}

// Inclusive prefix sums of (w, n) over the 256 threads in two levels of 16 serial steps: thread t's sum
// is offset[t/16] + local[t], where every thread computes the offsets serially in the same order, so
// offset[g+1] = offset[g] + local[16g+15] is bit for bit the inclusive sum of thread 16g+15 and the
// prefix is monotone in t for w ≥ 0. (Barriers are few on purpose: each one costs the software Vulkan
// of the tests seconds of shader compilation.) The caller must pass a barrier before fa/ua are written again.
struct Scan { w: f32, wPrev: f32, wTotal: f32, n: u32, nPrev: u32, nTotal: u32 }
fn scan2(li: u32, w: f32, n: u32) -> Scan {
  fa[li] = w;
  ua[li] = n;
  workgroupBarrier();
  if (li < 16u) {
    var a = 0.0;
    var c = 0u;
    for (var q = 0u; q < 16u; q++) {
      let i = li * 16u + q;
      a += fa[i];
      c += ua[i];
      fa[i] = a;
      ua[i] = c;
    }
    fa[WG + li] = a;
    ua[WG + li] = c;
  }
  workgroupBarrier();
  let g = li / 16u;
  var offW = 0.0;
  var offN = 0u;
  var totW = 0.0;
  var totN = 0u;
  for (var h = 0u; h < 16u; h++) {
    if (h == g) {
      offW = totW;
      offN = totN;
    }
    totW += fa[WG + h];
    totN += ua[WG + h];
  }
  var r: Scan;
  r.w = offW + fa[li];
  r.n = offN + ua[li];
  r.wPrev = offW;
  r.nPrev = offN;
  if (li % 16u != 0u) {
    r.wPrev = offW + fa[li - 1u];
    r.nPrev = offN + ua[li - 1u];
  }
  r.wTotal = totW;
  r.nTotal = totN;
  return r;
}

// Merge of online (max, Σ e^{z − max}) states over the threads, in two levels of 16. The caller must
// pass a barrier before fa[256..288) is written again.
fn reduceMS(li: u32, m: f32, s: f32) -> vec2<f32> {
  fa[li] = m;
  fb[li] = s;
  workgroupBarrier();
  if (li < 16u) {
    var mm = NEG;
    var ss = 0.0;
    for (var q = 0u; q < 16u; q++) {
      let m2 = fa[li * 16u + q];
      let s2 = fb[li * 16u + q];
      let mx = max(mm, m2);
      ss = ss * exp(mm - mx) + s2 * exp(m2 - mx);
      mm = mx;
    }
    fa[WG + li] = mm;
    fa[WG + 16u + li] = ss;
  }
  workgroupBarrier();
  var mm = NEG;
  var ss = 0.0;
  for (var g = 0u; g < 16u; g++) {
    let m2 = fa[WG + g];
    let s2 = fa[WG + 16u + g];
    let mx = max(mm, m2);
    ss = ss * exp(mm - mx) + s2 * exp(m2 - mx);
    mm = mx;
  }
  return vec2<f32>(mm, ss);
}

// The largest float below x (x > 0 finite): a goal strictly below a positive total always crosses.
fn below(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) - 1u);
}

// Four consecutive logits from id j (clamped to the row; 'ok' says which exist).
fn load4(base: u32, j: u32, V: u32) -> vec4<f32> {
  let jc = min(vec4<u32>(j, j + 1u, j + 2u, j + 3u), vec4<u32>(V - 1u));
  return vec4<f32>(logits[base + jc.x], logits[base + jc.y], logits[base + jc.z], logits[base + jc.w]);
}

// Kept weight (p > τ, or p = τ among the first 'keep' ties) and tie count of ids [a, b).
struct Part { w: f32, ties: u32 }
fn rangeWeight(base: u32, a: u32, b: u32, V: u32, m: f32, tau: u32) -> Part {
  var w = vec4<f32>(0.0);
  var n = vec4<u32>(0u);
  for (var j = a; j < b; j += 4u) {
    let l = load4(base, j, V);
    let ok = vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(b);
    let key = vec4<u32>(okey(l.x), okey(l.y), okey(l.z), okey(l.w));
    let p = exp(l * P.invT - m);
    w += select(vec4<f32>(0.0), p, ok & (key > vec4<u32>(tau)));
    n += select(vec4<u32>(0u), vec4<u32>(1u), ok & (key == vec4<u32>(tau)));
  }
  return Part((w.x + w.y) + (w.z + w.w), (n.x + n.y) + (n.z + n.w));
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= P.rows) { return; }
  let V = P.vocab;
  let base = row * V;
  let C = (V + WG - 1u) / WG;            // ids per thread chunk
  let c0 = min(V, li * C);
  let c1 = min(V, c0 + C);

  // Online max / sum over this thread's chunk, four ids per step, merged over the workgroup.
  var mt = NEG;
  var st = 0.0;
  for (var j = c0; j < c1; j += 4u) {
    let ok = vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(c1);
    let z = select(vec4<f32>(NEG), load4(base, j, V) * P.invT, ok);
    let mx = max(max(z.x, z.y), max(z.z, z.w));
    if (mx > mt) { st = st * exp(mt - mx); mt = mx; }
    let e = select(vec4<f32>(0.0), exp(z - mt), ok);
    st += (e.x + e.y) + (e.z + e.w);
  }
  let ms = reduceMS(li, mt, st);
  let m = ms.x;
  let S = ms.y;
  let logS = log(S);

  var tau = 0u;                  // key of the nucleus boundary (0: keep everything)
  var tauP = 0.0;                // p of a token at the boundary
  var keep = 0xFFFFFFFFu;        // ties (key = τ) kept, lowest ids first
  var W = 0.0;                   // weight of this thread's chunk above τ (everything when topP = 1)
  var tiesHere = 0u;             // ties (key = τ) in this thread's chunk

  if (P.topP >= 1.0) {
    W = st * exp(mt - m);
  } else {
    // Radix search, 4 bits a pass, for the largest key τ with M(τ) = Σ_{key_j ≥ τ} p_j ≥ topP·S.
    // Range [lo, lo + 2^(shift+4)); bucket = (key − lo) >> shift; keys above the range go to bucket 15.
    let T = P.topP * S;
    if (li == 0u) {
      state[0] = 0u;
      state[1] = 28u;
      fstate[0] = S;
      fstate[1] = 0.0;
    }
    loop {
      let st8 = workgroupUniformLoad(&state);
      let lo = st8[0];
      let shift = st8[1];
      tau = lo;
      if (shift > 28u) { break; }         // the range is one key
      for (var b = 0u; b < 16u; b++) { hist[b * WG + li] = 0.0; }
      for (var j = li; j < V; j += ${4 * WG}u) {
        let jj = vec4<u32>(j, j + ${WG}u, j + ${2 * WG}u, j + ${3 * WG}u);
        let jc = min(jj, vec4<u32>(V - 1u));
        let l = vec4<f32>(logits[base + jc.x], logits[base + jc.y], logits[base + jc.z], logits[base + jc.w]);
        let key = vec4<u32>(okey(l.x), okey(l.y), okey(l.z), okey(l.w));
        let p = exp(l * P.invT - m);
        let inr = (jj < vec4<u32>(V)) & (key >= vec4<u32>(lo));
        let bk = min((key - vec4<u32>(lo)) >> vec4<u32>(shift), vec4<u32>(15u));
        if (inr.x) { hist[bk.x * WG + li] += p.x; }
        if (inr.y) { hist[bk.y * WG + li] += p.y; }
        if (inr.z) { hist[bk.z * WG + li] += p.z; }
        if (inr.w) { hist[bk.w * WG + li] += p.w; }
      }
      workgroupBarrier();
      {
        let b = li / 16u;
        let part = li % 16u;
        var acc = 0.0;
        for (var q = 0u; q < 16u; q++) { acc += hist[b * WG + part * 16u + q]; }
        fa[li] = acc;
      }
      workgroupBarrier();
      if (li == 0u) {
        // M(lo + k·2^shift) = Σ_{buckets ≥ k}; take the largest k with M ≥ T (k = 0 if rounding leaves none).
        var chosen = 0u;
        var found = false;
        var suffix = 0.0;
        var mLo = 0.0;
        var mAbove = fstate[1];
        var mass0 = 0.0;
        for (var kk = 0u; kk < 16u; kk++) {
          let k = 15u - kk;
          var mass = 0.0;
          for (var q = 0u; q < 16u; q++) { mass += fa[k * 16u + q]; }
          let before = suffix;
          suffix += mass;
          mass0 = mass;
          if (!found && suffix >= T) {
            found = true;
            chosen = k;
            mLo = suffix;
            if (k < 15u) { mAbove = before; }
            break;
          }
        }
        if (!found) {
          mLo = suffix;
          mAbove = suffix - mass0;
        }
        state[0] = lo + (chosen << shift);
        state[1] = select(shift - 4u, 99u, shift == 0u);
        fstate[0] = mLo;
        fstate[1] = mAbove;
      }
    }
    tauP = exp(unkey(tau) * P.invT - m);
    if (tauP > 0.0) { keep = u32(clamp(ceil((T - fstate[1]) / tauP), 1.0, 4.0e9)); }
    // Chunk weights: p > τ, plus the first 'keep' ties (key = τ) in id order.
    let part = rangeWeight(base, c0, c1, V, m, tau);
    W = part.w;
    tiesHere = part.ties;
  }

  // Inverse CDF in levels: level 0 splits the row into 256 chunks (one per thread), level 1 splits the
  // chunk where the cumulative kept weight crosses u·Σw into 256 pieces; the thread whose piece crosses
  // at the last level walks its ids. The kept ties up to a point are the first min(keep, ties so far),
  // so the cumulative weight is Σ_{p > τ} p + min(keep, ties)·τ_p, monotone in the two prefix sums.
  let levels = select(1u, 2u, C > 1u);
  var r0 = 0u;                   // the range being split
  var r1 = V;
  var goal = 0.0;                // u·Σw, relative to the range's start
  var tiesBase = 0u;             // ties before the range
  var ok = true;
  var mine = false;              // this thread's piece crosses at the last level
  var p0 = 0u;
  var p1 = 0u;
  var accStart = 0.0;
  var rankStart = 0u;
  var goalHere = 0.0;
  for (var lvl = 0u; lvl < levels; lvl++) {
    let piece = (r1 - r0 + WG - 1u) / WG;
    p0 = min(r1, r0 + li * piece);
    p1 = min(r1, p0 + piece);
    var w = W;                   // level 0: this thread's chunk, weighed above
    var n = tiesHere;
    if (lvl > 0u) {
      let part = rangeWeight(base, p0, p1, V, m, tau);
      w = part.w;
      n = part.ties;
    }
    let sc = scan2(li, w, n);
    let kb = min(keep, tiesBase);
    let incl = sc.w + f32(min(keep, tiesBase + sc.n) - kb) * tauP;
    let prev = sc.wPrev + f32(min(keep, tiesBase + sc.nPrev) - kb) * tauP;
    let total = sc.wTotal + f32(min(keep, tiesBase + sc.nTotal) - kb) * tauP;
    ok = ok && total > 0.0 && total <= 3.4e38;
    if (lvl == 0u) { goal = clamp(uniforms[row], 0.0, 1.0) * total; }
    goal = min(max(goal, 0.0), below(total));
    mine = ok && incl > goal && !(prev > goal);
    accStart = prev;
    rankStart = tiesBase + sc.nPrev;
    goalHere = goal;
    if (mine) {
      bcu[0] = p0;
      bcu[1] = p1;
      bcu[2] = rankStart;
      bc[0] = prev;
    }
    workgroupBarrier();
    r0 = min(bcu[0], V);         // (clamped: without a crossing, !ok, these are never written)
    r1 = clamp(bcu[1], r0, V);
    tiesBase = bcu[2];
    goal -= bc[0];
  }
  if (!ok) {
    if (li == 0u) {
      // No finite positive mass: the logits are not finite.
      tokens[row] = -1;
      logProbs[row] = bitcast<f32>(0x7FC00000u | (row & 0u));  // NaN (not a constant: constants must be finite)
      lseOut[row] = m + logS;
    }
    return;
  }
  if (mine) {
    // Walk the piece's ids in order.
    var acc = accStart;
    var rank = rankStart;
    var chosen = -1;
    var last = -1;
    for (var j = p0; j < p1; j++) {
      let l = logits[base + j];
      let key = okey(l);
      let p = exp(l * P.invT - m);
      var w = 0.0;
      if (key > tau) { w = p; } else if (key == tau) { if (rank < keep) { w = tauP; } rank += 1u; }
      if (w > 0.0) {
        last = i32(j);
        acc += w;
        if (acc > goalHere) { chosen = i32(j); break; }
      }
    }
    if (chosen < 0) { chosen = last; }
    tokens[row] = chosen;
    logProbs[row] = (logits[base + u32(chosen)] * P.invT - m) - logS;
    lseOut[row] = m + logS;
  }
}`,
};

/**
 * Draw one token per row from softmax(logits/temperature), restricted to the top-p nucleus when
 * topP < 1, by inverse CDF with uniforms[r] ∈ [0, 1) in ascending id order. logProbs[r] is the
 * log-prob of the token under the full (unrestricted) distribution at that temperature; lse[r] gets
 * its logsumexp. A row whose logits are not finite gets token −1 and log-prob NaN.
 */
export async function sampleTokens(
  rt: Runtime,
  rec: Recorder,
  args: {
    logits: Tensor;
    rows: number;
    vocab: number;
    temperature: number;
    topP: number;
    uniforms: Tensor;
    tokens: Tensor;
    logProbs: Tensor;
    lse: Tensor;
  },
): Promise<void> {
  const fn = 'sampleTokens';
  const { logits, rows, vocab, temperature, topP, uniforms, tokens, logProbs, lse } = args;
  checkDim(fn, 'rows', rows);
  checkDim(fn, 'vocab', vocab, 1);
  checkTemperature(fn, temperature);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`${fn}: topP must be in (0, 1], got ${topP}`);
  checkTensor(fn, 'logits', logits, rows * vocab);
  checkTensor(fn, 'uniforms', uniforms, rows);
  checkTensor(fn, 'tokens', tokens, rows, 'i32');
  checkTensor(fn, 'logProbs', logProbs, rows);
  checkTensor(fn, 'lse', lse, rows);
  checkIndexRange(fn, rows * vocab);
  const kernel = await rt.kernel(SAMPLE);
  rec.dispatch(kernel, [logits, uniforms, tokens, logProbs, lse], [u(rows), u(vocab), f(1 / temperature), f(topP)], spread(rows));
}

/** `rmsKernelSource`, cached by its arguments. */
const rmsKernel = memoizeSpec(rmsKernelSource);

/** `logProbsKernelSource`, cached by its arguments. */
const logProbsKernel = memoizeSpec(logProbsKernelSource);
