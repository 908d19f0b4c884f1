/**
 * Causal grouped-query attention (forward with its log-sum-exp, backward), attention over a KV cache,
 * RoPE and the cache write, as WGSL kernels of the engine.
 *
 * Layout. Activations are token-major, as the matmuls produce them: q is [B·T, H·d] (token (b, t) is
 * row b·T + t, head h holds columns h·d … h·d + d − 1), k and v are [B·T, Hkv·d]. Query head h reads
 * kv head ⌊h / G⌋, G = H / Hkv. With s = scale (= 1/√d in the model):
 *
 *   Forward       S_ij = s · q_i·k_j   for j ≤ i (causal), −∞ otherwise
 *                 lse_i = log Σ_j exp(S_ij)                      (natural log, saved for the backward)
 *                 P_ij = exp(S_ij − lse_i),   o_i = Σ_j P_ij v_j
 *   Backward      given dO:  D_i = dO_i · o_i
 *                 dP_ij = dO_i · v_j,   dS_ij = P_ij (dP_ij − D_i)
 *                 dq_i = s Σ_j dS_ij k_j,   dk_j = s Σ_i dS_ij q_i,   dv_j = Σ_i P_ij dO_i
 *                 (dk, dv of kv head g also sum over the G query heads that read it)
 *
 * The forward never materialises S: a workgroup owns a block of BQ queries of one (b, h) and walks the
 * key blocks of BK keys up to the diagonal (the blocks above it are skipped), keeping for every query
 * the running maximum m, the running sum l and the unnormalised output (online softmax):
 *
 *   m' = max(m, max_j S_ij),  α = e^{m − m'},  l' = α·l + Σ_j e^{S_ij − m'},  o' = α·o + Σ_j e^{S_ij − m'} v_j
 *
 * and writes o / l and lse = m + log l at the end. Exponentials are taken base 2 with q pre-multiplied
 * by s·log₂e (2^{x·log₂e} = e^x), which is exact up to rounding. The Q tile, the current K (then V) tile
 * and the score tile live in workgroup memory (≤ 32 KiB, rows padded by one vec4 against bank
 * conflicts); each invocation computes a small register tile of scores and of outputs.
 *
 * The backward is deterministic (no atomics): D first (one pass over the rows), then one pass parallel
 * over key blocks (each workgroup owns BK keys of one kv head, keeps K, V in workgroup memory and
 * accumulates dk, dv in registers while walking the query blocks on and below the diagonal for each of
 * the G query heads), then one pass parallel over query blocks for dq (walks the key blocks up to the
 * diagonal). Both recompute P from q, k and lse tile by tile.
 *
 * Attention over a KV cache (inference): query t of row b sees cache slots keyStart_b … keyEnd_b + t
 * (slots before keyStart_b are left padding; the new tokens' k, v are already in the cache). Chunks of
 * 8 or more queries (prefill) use the tiled kernel above with this visibility rule; fewer (decode) use a
 * split-key kernel: one workgroup per (b, h, t), its invocations in groups of GS that each own a slice
 * of the head's channels; each group walks every NG-th key with its own online softmax (partial dot
 * products combined through workgroup memory, double-buffered so one barrier per round of NG·KPR keys),
 * and the NG partial states (m_g, l_g, o_g) are merged at the end:
 *
 *   M = max_g m_g,   o = Σ_g e^{m_g − M} o_g / Σ_g e^{m_g − M} l_g.
 *
 * A query that sees no key gets o = 0.
 *
 * RoPE (Hugging Face rotate-half): for channel pair i < d/2 of each head and angle θ_i·pos with
 * θ_i = θ^{−2i/d},  (x_i, x_{i+d/2}) ↦ (x_i cos − x_{i+d/2} sin, x_{i+d/2} cos + x_i sin); the inverse
 * (the backward) rotates by −angle. cos/sin come from a table computed in float64 on the CPU.
 *
 * Head sizes: any d in 1…256 (the kernels pad d to a power of two ≥ 8 in workgroup memory; the padded
 * channels are zero and, in the score products, not even visited). Keys outside a query's visible range
 * are never read into a score or a weighted sum (an unwritten cache may hold NaN).
 *
 * Measured on an H200 (f32, B=1, T=4096, H=16, d=64): forward 3.2 ms (≈11 TFLOP/s), backward 14 ms;
 * d=128: forward 11 ms, backward 55 ms; decode (Tq=1, S=8192, B=8, Hkv=4) 0.11 ms. All tiles stay
 * within 32 KiB of workgroup memory; 48 KiB tiles (bq=64/bk=32 forward, bk=32/bq=32 dk/dv, bq=64 dq)
 * were 15–25% faster there.
 */
import { spread, type KernelSpec, type Recorder, type Runtime, type Tensor, type DType, f, u, memoizeSpec } from '../runtime.js';

const LOG2E = 1.4426950408889634;
const LN2 = 0.6931471805599453;

/** Shape of a training-time (self-)attention call. */
export interface AttentionShape {
  batch: number;
  seqLen: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

// ───────────────────────────── validation ─────────────────────────────

function checkInt(what: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`attention: ${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

function checkTensor(op: string, name: string, tensor: Tensor, size: number, dtype: DType): void {
  if (tensor.dtype !== dtype) throw new RangeError(`${op}: '${name}' ('${tensor.label}') must be ${dtype}, got ${tensor.dtype}`);
  if (tensor.size !== size) {
    throw new RangeError(`${op}: '${name}' ('${tensor.label}') has ${tensor.size} elements [${tensor.shape.join(', ')}], expected ${size}`);
  }
}

function checkHeads(nHeads: number, nKvHeads: number, headDim: number): void {
  checkInt('nHeads', nHeads, 1, 65535);
  checkInt('nKvHeads', nKvHeads, 1, 65535);
  checkInt('headDim', headDim, 1, 256);
  if (nHeads % nKvHeads !== 0) throw new RangeError(`attention: nHeads (${nHeads}) must be a multiple of nKvHeads (${nKvHeads})`);
}

function checkShape(s: AttentionShape): void {
  checkInt('batch', s.batch, 1, 65535);
  checkInt('seqLen', s.seqLen, 1);
  checkHeads(s.nHeads, s.nKvHeads, s.headDim);
}

/** Head size padded to a power of two ≥ 8 (the row size of the tiles). */
function paddedDim(d: number): number {
  let p = 8;
  while (p < d) p *= 2;
  return p;
}

// ───────────────────────────── code generation helpers ─────────────────────────────

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);

/**
 * WGSL that copies `rows` rows of a head (d channels from `src[base(r) + c]`) into the vec4 tile `dst`
 * (row stride dps4 vec4s), zero where `valid(r)` fails or c ≥ d, times `mul` if given.
 */
function tileLoad(o: {
  dst: string;
  dstOffset?: string;
  rows: number;
  nt: number;
  dp: number;
  dps4: number;
  d: number;
  src: string;
  valid: string;
  base: string;
  mul?: string;
}): string {
  const inRow = o.d < o.dp ? `c < ${o.d}u && ` : '';
  return `
  for (var e = t; e < ${o.rows * o.dp}u; e += ${o.nt}u) {
    let r = e / ${o.dp}u;
    let c = e % ${o.dp}u;
    var x = 0.0;
    if (${inRow}${o.valid}) { x = ${o.src}[${o.base} + c]${o.mul ? ` * ${o.mul}` : ''}; }
    ${o.dst}[${o.dstOffset ? `${o.dstOffset} + ` : ''}r * ${o.dps4}u + c / 4u][c % 4u] = x;
  }`;
}

/** WGSL statements storing vec4 `val` at channels 4·c4 … of a row starting at `base` of `dst` (channels < d). */
function storeVec4(dst: string, base: string, c4: string, val: string, d: number, dp: number): string {
  if (d % 4 === 0) {
    const guard = d < dp ? `if (${c4} < ${d / 4}u) ` : '';
    return `${guard}{ let sb = ${base} + ${c4} * 4u; ${range(4)
      .map((k) => `${dst}[sb + ${k}u] = ${val}[${k}];`)
      .join(' ')} }`;
  }
  return `{ let sb = ${base} + ${c4} * 4u; ${range(4)
    .map((k) => `if (${c4} * 4u + ${k}u < ${d}u) { ${dst}[sb + ${k}u] = ${val}[${k}]; }`)
    .join(' ')} }`;
}

/** WGSL expression loading channels 4·c4 … of a row at `base` of `src` as a vec4 (zero for channels ≥ d). */
function loadVec4(src: string, base: string, c4: string, d: number): string {
  const comps = range(4).map((k) =>
    d % 4 === 0
      ? `${src}[${base} + ${c4} * 4u + ${k}u]`
      : `select(0.0, ${src}[min(${base} + ${c4} * 4u + ${k}u, ${base} + ${d - 1}u)], ${c4} * 4u + ${k}u < ${d}u)`,
  );
  return `vec4f(${comps.join(', ')})`;
}

// ───────────────────────────── forward (training and cached prefill) ─────────────────────────────

/** Tiling of the forward kernel: BQ queries × BK keys per step, NT invocations; score tile SR×SC, output tile OR rows × OV vec4s. */
interface TileConfig {
  dp: number;
  bq: number;
  bk: number;
  nt: number;
  sr: number;
  sc: number;
  or: number;
  ov: number;
}

type FwdConfig = TileConfig;

function fwdConfig(d: number): FwdConfig {
  const dp = paddedDim(d);
  let c: FwdConfig;
  if (dp <= 32) c = { dp, bq: 64, bk: 32, nt: 128, sr: 4, sc: 4, ov: 1, or: dp / 8 };
  else if (dp === 64)
    c = { dp, bq: 32, bk: 32, nt: 128, sr: 4, sc: 2, ov: 1, or: 4 }; // 21.8 KiB; beat 64×16 by 15–30% on an H200
  else if (dp === 128) c = { dp, bq: 32, bk: 16, nt: 128, sr: 4, sc: 1, ov: 2, or: 4 };
  else c = { dp, bq: 16, bk: 8, nt: 64, sr: 2, sc: 1, ov: 4, or: 4 };
  // The two register tilings must each cover their tile with exactly nt invocations.
  checkFwdConfig(c);
  return c;
}

function checkFwdConfig(c: FwdConfig): void {
  if ((c.bk / c.sc) * (c.bq / c.sr) !== c.nt || (c.dp / 4 / c.ov) * (c.bq / c.or) !== c.nt)
    throw new Error(`bad attention tiling ${JSON.stringify(c)}`);
}

function forwardSpecSource(d: number, mode: 'train' | 'cached', c: FwdConfig = fwdConfig(d)): KernelSpec {
  checkFwdConfig(c);
  const { dp, bq, bk, nt, sr, sc, or, ov } = c;
  const dps4 = dp / 4 + 1; // padded row stride in vec4s
  const d4 = Math.ceil(d / 4);
  const nkg = bk / sc; // key groups of the score tile
  const srg = bq / sr; // row groups of the score tile
  const ndg = dp / 4 / ov; // vec4 groups of the output tile
  const org = bq / or; // row groups of the output tile
  const pst = bk + 1; // score-tile row stride
  const train = mode === 'train';
  const sDecl = range(sr)
    .flatMap((a) => range(sc).map((b) => `var s${a}_${b} = 0.0;`))
    .join(' ');
  const oDecl = range(or)
    .flatMap((a) => range(ov).map((b) => `var o${a}_${b} = vec4f(0.0);`))
    .join(' ');
  const code = /* wgsl */ `
struct Params { T: u32, S: u32, H: u32, HKV: u32, group: u32, nQB: u32, scale2: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
${train ? '@group(0) @binding(5) var<storage, read_write> lse: array<f32>;' : '@group(0) @binding(5) var<storage, read> keyStart: array<i32>;\n@group(0) @binding(6) var<storage, read> keyEnd: array<i32>;'}

const NEG = -1e30;
const D = ${d}u;
const DPS4 = ${dps4}u;
var<workgroup> qs: array<vec4f, ${bq * dps4}>;
var<workgroup> kv: array<vec4f, ${bk * dps4}>;
var<workgroup> ps: array<f32, ${bq * pst}>;
var<workgroup> rs: array<f32, ${bq}>;

@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let qb = P.nQB - 1u - wg.x;  // heaviest query blocks first
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let q0 = qb * ${bq}u;
  let qStride = P.H * D;
  let kStride = P.HKV * D;
  let qRow0 = b * P.T;
  let kRow0 = b * P.S;
  let ks = ${train ? '0' : 'keyStart[b]'};
  let ke = ${train ? '0' : 'keyEnd[b]'};
  // Keys any query of this block sees: [lo, hi].
  let lo = max(ks, 0);
  let hi = min(ke + i32(min(q0 + ${bq}u, P.T)) - 1, i32(P.S) - 1);
${tileLoad({ dst: 'qs', rows: bq, nt, dp, dps4, d, src: 'q', valid: 'q0 + r < P.T', base: '(qRow0 + q0 + r) * qStride + h * D', mul: 'P.scale2' })}
  var m = NEG;
  var l = 0.0;
  ${oDecl}
  let kg = t % ${nkg}u;
  let rg = t / ${nkg}u;
  let dg = t % ${ndg}u;
  let og = t / ${ndg}u;
  let kbLo = select(0, lo / ${bk}, hi >= lo);
  let kbHi = select(-1, hi / ${bk}, hi >= lo);
  for (var kb = kbLo; kb <= kbHi; kb++) {
    let k0 = u32(kb) * ${bk}u;
${tileLoad({ dst: 'kv', rows: bk, nt, dp, dps4, d, src: 'k', valid: 'i32(k0 + r) >= lo && i32(k0 + r) <= hi', base: '(kRow0 + k0 + r) * kStride + hk * D' })}
    workgroupBarrier();
    // Scores of rows rg + a·${srg}, keys kg + b·${nkg} (log2 domain).
    ${sDecl}
    for (var d4 = 0u; d4 < ${d4}u; d4++) {
      ${range(sr)
        .map((a) => `let qa${a} = qs[(rg + ${a * srg}u) * DPS4 + d4];`)
        .join(' ')}
      ${range(sc)
        .map((b) => `let kb${b} = kv[(kg + ${b * nkg}u) * DPS4 + d4];`)
        .join(' ')}
      ${range(sr)
        .flatMap((a) => range(sc).map((b) => `s${a}_${b} += dot(qa${a}, kb${b});`))
        .join(' ')}
    }
    ${range(sr)
      .flatMap((a) =>
        range(sc).map(
          (b) => `{ let qi = i32(q0 + rg + ${a * srg}u); let kj = i32(k0 + kg + ${b * nkg}u);
      ps[(rg + ${a * srg}u) * ${pst}u + kg + ${b * nkg}u] = select(NEG, s${a}_${b}, kj >= ks && kj <= ke + qi && kj < i32(P.S)); }`,
        ),
      )
      .join('\n    ')}
    workgroupBarrier();
    if (t < ${bq}u) {
      // Online softmax of row t over this key block.
      var mx = m;
      for (var j = 0u; j < ${bk}u; j++) { mx = max(mx, ps[t * ${pst}u + j]); }
      let alpha = exp2(m - mx);
      var sum = 0.0;
      for (var j = 0u; j < ${bk}u; j++) {
        let p = exp2(ps[t * ${pst}u + j] - mx);
        ps[t * ${pst}u + j] = p;
        sum += p;
      }
      l = l * alpha + sum;
      m = mx;
      rs[t] = alpha;
    }
${tileLoad({ dst: 'kv', rows: bk, nt, dp, dps4, d, src: 'v', valid: 'i32(k0 + r) >= lo && i32(k0 + r) <= hi', base: '(kRow0 + k0 + r) * kStride + hk * D' })}
    workgroupBarrier();
    ${range(or)
      .map(
        (a) =>
          `{ let al = rs[og + ${a * org}u]; ${range(ov)
            .map((b) => `o${a}_${b} *= al;`)
            .join(' ')} }`,
      )
      .join(' ')}
    for (var j = 0u; j < ${bk}u; j++) {
      ${range(or)
        .map((a) => `let p${a} = ps[(og + ${a * org}u) * ${pst}u + j];`)
        .join(' ')}
      ${range(ov)
        .map((b) => `let vb${b} = kv[j * DPS4 + dg + ${b * ndg}u];`)
        .join(' ')}
      ${range(or)
        .flatMap((a) => range(ov).map((b) => `o${a}_${b} += p${a} * vb${b};`))
        .join(' ')}
    }
    workgroupBarrier();
  }
  if (t < ${bq}u) {
    let seen = m > 0.5 * NEG;
    rs[t] = select(0.0, 1.0 / l, seen);
    ${train ? `if (q0 + t < P.T) { lse[(b * P.H + h) * P.T + q0 + t] = select(NEG, (m + log2(l)) * ${LN2}, seen); }` : ''}
  }
  workgroupBarrier();
  ${range(or)
    .map((a) => {
      const stores = range(ov)
        .map((b) => storeVec4('o', 'ob', `(dg + ${b * ndg}u)`, `(o${a}_${b} * inv)`, d, dp))
        .join(' ');
      return `{ let row = og + ${a * org}u; if (q0 + row < P.T) { let inv = rs[row]; let ob = (qRow0 + q0 + row) * qStride + h * D; ${stores} } }`;
    })
    .join('\n  ')}
}`;
  return {
    name: `attn_fwd_${mode}_d${d}_bq${bq}_bk${bk}_nt${nt}_s${sr}x${sc}_o${or}x${ov}`,
    code,
    bindings: train ? ['read', 'read', 'read', 'rw', 'rw'] : ['read', 'read', 'read', 'rw', 'read', 'read'],
  };
}

/**
 * Training attention (causal self-attention over the same T tokens): out [B·T, H·d] and
 * lse [B·H·T] (natural-log log-sum-exp of the scaled scores of query (b, h, t) at (b·H + h)·T + t).
 */
export async function attentionForward(
  rt: Runtime,
  rec: Recorder,
  args: AttentionShape & { q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor; scale: number },
): Promise<void> {
  checkShape(args);
  const { batch: B, seqLen: T, nHeads: H, nKvHeads: HKV, headDim: D } = args;
  const op = 'attentionForward';
  checkTensor(op, 'q', args.q, B * T * H * D, 'f32');
  checkTensor(op, 'k', args.k, B * T * HKV * D, 'f32');
  checkTensor(op, 'v', args.v, B * T * HKV * D, 'f32');
  checkTensor(op, 'out', args.out, B * T * H * D, 'f32');
  checkTensor(op, 'lse', args.lse, B * H * T, 'f32');
  const cfg = fwdConfig(D);
  const nQB = Math.ceil(T / cfg.bq);
  if (nQB > 65535) throw new RangeError(`${op}: seqLen ${T} needs more than 65535 query blocks`);
  const kernel = await rt.kernel(forwardSpec(D, 'train'));
  rec.dispatch(
    kernel,
    [args.q, args.k, args.v, args.out, args.lse],
    [u(T), u(T), u(H), u(HKV), u(H / HKV), u(nQB), f(args.scale * LOG2E)],
    [nQB, H, B],
  );
}

// ───────────────────────────── backward ─────────────────────────────

function deltaSpecSource(d: number): KernelSpec {
  const code = /* wgsl */ `
struct Params { T: u32, H: u32, n: u32, nx: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dO: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;
// One invocation per (b, t, h): delta[(b·H + h)·T + t] = dO_(b,t,h) · o_(b,t,h).
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let idx = (wg.y * P.nx + wg.x) * 256u + t;
  if (idx >= P.n) { return; }
  let base = idx * ${d}u;
  var acc = 0.0;
  for (var c = 0u; c < ${d}u; c++) { acc += dO[base + c] * o[base + c]; }
  let h = idx % P.H;
  let bt = idx / P.H;
  let b = bt / P.T;
  let tt = bt % P.T;
  delta[(b * P.H + h) * P.T + tt] = acc;
}`;
  return { name: `attn_bwd_delta_d${d}`, code, bindings: ['read', 'read', 'rw'] };
}

/** dK/dV pass: BK keys × BQ queries per step; score tile SR keys × SC queries; accumulation tile OR keys × OV vec4s, half the invocations for dv, half for dk (the forward's fields, read the other way round). */
type BwdConfig = TileConfig;

function dkdvConfig(d: number): BwdConfig {
  const dp = paddedDim(d);
  let c: BwdConfig;
  if (dp <= 32) c = { dp, bk: 32, bq: 32, nt: 128, sr: 2, sc: 4, ov: 1, or: dp / 8 };
  else if (dp === 64) c = { dp, bk: 32, bq: 16, nt: 128, sr: 2, sc: 2, ov: 2, or: 4 };
  else if (dp === 128) c = { dp, bk: 16, bq: 8, nt: 128, sr: 1, sc: 1, ov: 2, or: 4 };
  else c = { dp, bk: 8, bq: 4, nt: 64, sr: 1, sc: 1, ov: 4, or: 4 };
  if ((c.bk / c.sr) * (c.bq / c.sc) > c.nt || (c.dp / 4 / c.ov) * (c.bk / c.or) !== c.nt / 2)
    throw new Error(`bad dk/dv tiling for d=${d}`);
  return c;
}

function dqConfig(d: number): BwdConfig {
  const dp = paddedDim(d);
  let c: BwdConfig;
  if (dp <= 16) c = { dp, bq: 32, bk: 32, nt: 128, sr: 4, sc: 2, ov: 1, or: 1 };
  else if (dp === 32) c = { dp, bq: 32, bk: 32, nt: 128, sr: 4, sc: 2, ov: 1, or: 2 };
  else if (dp === 64) c = { dp, bq: 32, bk: 16, nt: 128, sr: 2, sc: 2, ov: 1, or: 4 };
  else if (dp === 128) c = { dp, bq: 16, bk: 8, nt: 128, sr: 1, sc: 1, ov: 1, or: 4 };
  else c = { dp, bq: 8, bk: 4, nt: 64, sr: 1, sc: 1, ov: 2, or: 4 };
  if ((c.bq / c.sr) * (c.bk / c.sc) > c.nt || (c.dp / 4 / c.ov) * (c.bq / c.or) > c.nt || c.bq % c.or !== 0)
    throw new Error(`bad dq tiling for d=${d}`);
  return c;
}

function dkdvSpecSource(d: number, cfg: BwdConfig = dkdvConfig(d)): KernelSpec {
  const { dp, bq, bk, nt, sr, sc, or, ov } = cfg;
  if ((bk / sr) * (bq / sc) > nt || (dp / 4 / ov) * (bk / or) !== nt / 2) throw new Error(`bad dk/dv tiling ${JSON.stringify(cfg)}`);
  const dps4 = dp / 4 + 1;
  const d4 = Math.ceil(d / 4);
  const nqg = bq / sc; // query groups (fastest) of the score tile
  const krg = bk / sr; // key groups of the score tile
  const na = nqg * krg; // invocations busy on scores
  const half = nt / 2;
  const ndg = dp / 4 / ov;
  const org = bk / or;
  const pst = bq + 1;
  const code = /* wgsl */ `
struct Params { T: u32, H: u32, HKV: u32, group: u32, nQB: u32, scale2: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dO: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

const D = ${d}u;
const DPS4 = ${dps4}u;
const QT = ${bq * dps4}u;   // offset of the q tile in xs (dO first)
const PT = ${bk * pst}u;    // offset of dSᵀ in pp (Pᵀ first)
var<workgroup> ks: array<vec4f, ${bk * dps4}>;
var<workgroup> vs: array<vec4f, ${bk * dps4}>;
var<workgroup> xs: array<vec4f, ${2 * bq * dps4}>;
var<workgroup> pp: array<f32, ${2 * bk * pst}>;
var<workgroup> ls: array<f32, ${bq}>;
var<workgroup> dl: array<f32, ${bq}>;

@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let kb = wg.x;  // small key blocks see the most queries: first
  let hk = wg.y;
  let b = wg.z;
  let k0 = kb * ${bk}u;
  let qStride = P.H * D;
  let kStride = P.HKV * D;
  let row0 = b * P.T;
${tileLoad({ dst: 'ks', rows: bk, nt, dp, dps4, d, src: 'k', valid: 'k0 + r < P.T', base: '(row0 + k0 + r) * kStride + hk * D' })}
${tileLoad({ dst: 'vs', rows: bk, nt, dp, dps4, d, src: 'v', valid: 'k0 + r < P.T', base: '(row0 + k0 + r) * kStride + hk * D' })}
  // Score tile: keys kr + a·${krg}, queries qg + c·${nqg}.
  let qg = t % ${nqg}u;
  let kr = t / ${nqg}u;
  // Accumulation tile: which (0 dv, 1 dk), keys og + a·${org}, vec4s dg + c·${ndg}.
  let which = t / ${half}u;
  let tu = t % ${half}u;
  let dg = tu % ${ndg}u;
  let og = tu / ${ndg}u;
  let xOff = which * QT;
  let pOff = which * PT;
  ${range(or)
    .flatMap((a) => range(ov).map((c) => `var a${a}_${c} = vec4f(0.0);`))
    .join(' ')}
  for (var hh = 0u; hh < P.group; hh++) {
    let h = hk * P.group + hh;
    for (var qb = k0 / ${bq}u; qb < P.nQB; qb++) {
      let q0 = qb * ${bq}u;
${tileLoad({ dst: 'xs', rows: bq, nt, dp, dps4, d, src: 'dO', valid: 'q0 + r < P.T', base: '(row0 + q0 + r) * qStride + h * D' })}
${tileLoad({ dst: 'xs', dstOffset: 'QT', rows: bq, nt, dp, dps4, d, src: 'q', valid: 'q0 + r < P.T', base: '(row0 + q0 + r) * qStride + h * D', mul: 'P.scale2' })}
      if (t < ${bq}u) {
        let qi = q0 + t;
        let ok = qi < P.T;
        let li = select(0u, (b * P.H + h) * P.T + qi, ok);
        ls[t] = select(0.0, lse[li] * ${LOG2E}, ok);
        dl[t] = select(0.0, delta[li], ok);
      }
      workgroupBarrier();
      ${na < nt ? `if (t < ${na}u) {` : '{'}
        ${range(sr)
          .flatMap((a) => range(sc).map((c) => `var s${a}_${c} = 0.0; var e${a}_${c} = 0.0;`))
          .join(' ')}
        for (var d4 = 0u; d4 < ${d4}u; d4++) {
          ${range(sr)
            .map((a) => `let kk${a} = ks[(kr + ${a * krg}u) * DPS4 + d4]; let vv${a} = vs[(kr + ${a * krg}u) * DPS4 + d4];`)
            .join(' ')}
          ${range(sc)
            .map((c) => `let qq${c} = xs[QT + (qg + ${c * nqg}u) * DPS4 + d4]; let oo${c} = xs[(qg + ${c * nqg}u) * DPS4 + d4];`)
            .join(' ')}
          ${range(sr)
            .flatMap((a) => range(sc).map((c) => `s${a}_${c} += dot(kk${a}, qq${c}); e${a}_${c} += dot(vv${a}, oo${c});`))
            .join(' ')}
        }
        ${range(sr)
          .flatMap((a) =>
            range(sc).map(
              (c) => `{ let kl = kr + ${a * krg}u; let ql = qg + ${c * nqg}u; let kj = k0 + kl; let qi = q0 + ql;
        let p = select(0.0, exp2(s${a}_${c} - ls[ql]), kj <= qi && qi < P.T && kj < P.T);
        pp[kl * ${pst}u + ql] = p; pp[PT + kl * ${pst}u + ql] = p * (e${a}_${c} - dl[ql]); }`,
            ),
          )
          .join('\n        ')}
      }
      workgroupBarrier();
      for (var j = 0u; j < ${bq}u; j++) {
        ${range(or)
          .map((a) => `let p${a} = pp[pOff + (og + ${a * org}u) * ${pst}u + j];`)
          .join(' ')}
        ${range(ov)
          .map((c) => `let x${c} = xs[xOff + j * DPS4 + dg + ${c * ndg}u];`)
          .join(' ')}
        ${range(or)
          .flatMap((a) => range(ov).map((c) => `a${a}_${c} += p${a} * x${c};`))
          .join(' ')}
      }
      workgroupBarrier();
    }
  }
  // dv = Σ Pᵀ dO; dk = s Σ dSᵀ q = ln2 · Σ dSᵀ q' with q' = q · s · log2(e).
  let mul = select(1.0, ${LN2}, which == 1u);
  ${range(or)
    .map((a) => {
      const stores = (dst: string) =>
        range(ov)
          .map((c) => storeVec4(dst, 'ob', `(dg + ${c * ndg}u)`, `(a${a}_${c} * mul)`, d, dp))
          .join(' ');
      return `{ let kj = k0 + og + ${a * org}u; if (kj < P.T) { let ob = (row0 + kj) * kStride + hk * D; if (which == 0u) { ${stores('dv')} } else { ${stores('dk')} } } }`;
    })
    .join('\n  ')}
}`;
  return {
    name: `attn_bwd_dkdv_d${d}_bk${bk}_bq${bq}_nt${nt}_s${sr}x${sc}_o${or}x${ov}`,
    code,
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
  };
}

function dqSpecSource(d: number, cfg: BwdConfig = dqConfig(d)): KernelSpec {
  const { dp, bq, bk, nt, sr, sc, or, ov } = cfg;
  if ((bq / sr) * (bk / sc) > nt || (dp / 4 / ov) * (bq / or) > nt || bq % or !== 0)
    throw new Error(`bad dq tiling ${JSON.stringify(cfg)}`);
  const dps4 = dp / 4 + 1;
  const d4 = Math.ceil(d / 4);
  const nkg = bk / sc;
  const srg = bq / sr;
  const na = nkg * srg;
  const ndg = dp / 4 / ov;
  const org = bq / or;
  const nc = ndg * org;
  const pst = bk + 1;
  const code = /* wgsl */ `
struct Params { T: u32, H: u32, HKV: u32, group: u32, nQB: u32, scale2: f32, scale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dO: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

const D = ${d}u;
const DPS4 = ${dps4}u;
var<workgroup> qs: array<vec4f, ${bq * dps4}>;
var<workgroup> os: array<vec4f, ${bq * dps4}>;
var<workgroup> ks: array<vec4f, ${bk * dps4}>;
var<workgroup> vs: array<vec4f, ${bk * dps4}>;
var<workgroup> ds: array<f32, ${bq * pst}>;
var<workgroup> ls: array<f32, ${bq}>;
var<workgroup> dl: array<f32, ${bq}>;

@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let qb = P.nQB - 1u - wg.x;  // heaviest query blocks first
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let q0 = qb * ${bq}u;
  let qStride = P.H * D;
  let kStride = P.HKV * D;
  let row0 = b * P.T;
${tileLoad({ dst: 'qs', rows: bq, nt, dp, dps4, d, src: 'q', valid: 'q0 + r < P.T', base: '(row0 + q0 + r) * qStride + h * D', mul: 'P.scale2' })}
${tileLoad({ dst: 'os', rows: bq, nt, dp, dps4, d, src: 'dO', valid: 'q0 + r < P.T', base: '(row0 + q0 + r) * qStride + h * D' })}
  if (t < ${bq}u) {
    let qi = q0 + t;
    let ok = qi < P.T;
    let li = select(0u, (b * P.H + h) * P.T + qi, ok);
    ls[t] = select(0.0, lse[li] * ${LOG2E}, ok);
    dl[t] = select(0.0, delta[li], ok);
  }
  // Score tile: queries rg + a·${srg}, keys kg + c·${nkg}. Accumulation tile: queries og + a·${org}, vec4s dg + c·${ndg}.
  let kg = t % ${nkg}u;
  let rg = t / ${nkg}u;
  let dg = t % ${ndg}u;
  let og = t / ${ndg}u;
  ${range(or)
    .flatMap((a) => range(ov).map((c) => `var a${a}_${c} = vec4f(0.0);`))
    .join(' ')}
  let kbHi = (min(q0 + ${bq}u, P.T) - 1u) / ${bk}u;
  for (var kb = 0u; kb <= kbHi; kb++) {
    let k0 = kb * ${bk}u;
${tileLoad({ dst: 'ks', rows: bk, nt, dp, dps4, d, src: 'k', valid: 'k0 + r < P.T', base: '(row0 + k0 + r) * kStride + hk * D' })}
${tileLoad({ dst: 'vs', rows: bk, nt, dp, dps4, d, src: 'v', valid: 'k0 + r < P.T', base: '(row0 + k0 + r) * kStride + hk * D' })}
    workgroupBarrier();
    ${na < nt ? `if (t < ${na}u) {` : '{'}
      ${range(sr)
        .flatMap((a) => range(sc).map((c) => `var s${a}_${c} = 0.0; var e${a}_${c} = 0.0;`))
        .join(' ')}
      for (var d4 = 0u; d4 < ${d4}u; d4++) {
        ${range(sr)
          .map((a) => `let qq${a} = qs[(rg + ${a * srg}u) * DPS4 + d4]; let oo${a} = os[(rg + ${a * srg}u) * DPS4 + d4];`)
          .join(' ')}
        ${range(sc)
          .map((c) => `let kk${c} = ks[(kg + ${c * nkg}u) * DPS4 + d4]; let vv${c} = vs[(kg + ${c * nkg}u) * DPS4 + d4];`)
          .join(' ')}
        ${range(sr)
          .flatMap((a) => range(sc).map((c) => `s${a}_${c} += dot(qq${a}, kk${c}); e${a}_${c} += dot(oo${a}, vv${c});`))
          .join(' ')}
      }
      ${range(sr)
        .flatMap((a) =>
          range(sc).map(
            (c) => `{ let ql = rg + ${a * srg}u; let kl = kg + ${c * nkg}u; let qi = q0 + ql; let kj = k0 + kl;
      let p = select(0.0, exp2(s${a}_${c} - ls[ql]), kj <= qi && qi < P.T && kj < P.T);
      ds[ql * ${pst}u + kl] = p * (e${a}_${c} - dl[ql]); }`,
          ),
        )
        .join('\n      ')}
    }
    workgroupBarrier();
    ${nc < nt ? `if (t < ${nc}u) {` : '{'}
      for (var j = 0u; j < ${bk}u; j++) {
        ${range(or)
          .map((a) => `let p${a} = ds[(og + ${a * org}u) * ${pst}u + j];`)
          .join(' ')}
        ${range(ov)
          .map((c) => `let x${c} = ks[j * DPS4 + dg + ${c * ndg}u];`)
          .join(' ')}
        ${range(or)
          .flatMap((a) => range(ov).map((c) => `a${a}_${c} += p${a} * x${c};`))
          .join(' ')}
      }
    }
    workgroupBarrier();
  }
  ${nc < nt ? `if (t < ${nc}u) {` : '{'}
  ${range(or)
    .map((a) => {
      const stores = range(ov)
        .map((c) => storeVec4('dq', 'ob', `(dg + ${c * ndg}u)`, `(a${a}_${c} * P.scale)`, d, dp))
        .join(' ');
      return `{ let qi = q0 + og + ${a * org}u; if (qi < P.T) { let ob = (row0 + qi) * qStride + h * D; ${stores} } }`;
    })
    .join('\n  ')}
  }
}`;
  return {
    name: `attn_bwd_dq_d${d}_bq${bq}_bk${bk}_nt${nt}_s${sr}x${sc}_o${or}x${ov}`,
    code,
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'rw'],
  };
}

/**
 * Gradients of `attentionForward` (dq, dk, dv overwritten) given dOut, recomputing the probabilities
 * from q, k and lse. `scratch` (f32 [B·H·T]) receives D_i = dOut_i · out_i. Deterministic.
 */
export async function attentionBackward(
  rt: Runtime,
  rec: Recorder,
  args: AttentionShape & {
    q: Tensor;
    k: Tensor;
    v: Tensor;
    out: Tensor;
    dOut: Tensor;
    lse: Tensor;
    dq: Tensor;
    dk: Tensor;
    dv: Tensor;
    scratch: Tensor;
    scale: number;
  },
): Promise<void> {
  checkShape(args);
  const { batch: B, seqLen: T, nHeads: H, nKvHeads: HKV, headDim: D } = args;
  const op = 'attentionBackward';
  const qn = B * T * H * D;
  const kn = B * T * HKV * D;
  checkTensor(op, 'q', args.q, qn, 'f32');
  checkTensor(op, 'k', args.k, kn, 'f32');
  checkTensor(op, 'v', args.v, kn, 'f32');
  checkTensor(op, 'out', args.out, qn, 'f32');
  checkTensor(op, 'dOut', args.dOut, qn, 'f32');
  checkTensor(op, 'lse', args.lse, B * H * T, 'f32');
  checkTensor(op, 'dq', args.dq, qn, 'f32');
  checkTensor(op, 'dk', args.dk, kn, 'f32');
  checkTensor(op, 'dv', args.dv, kn, 'f32');
  checkTensor(op, 'scratch', args.scratch, B * H * T, 'f32');
  const kv = dkdvConfig(D);
  const qc = dqConfig(D);
  const nKB = Math.ceil(T / kv.bk);
  const nQBq = Math.ceil(T / qc.bq);
  if (nKB > 65535 || nQBq > 65535) throw new RangeError(`${op}: seqLen ${T} needs more than 65535 blocks`);
  const [delta, dkdv, dq] = await Promise.all([rt.kernel(deltaSpec(D)), rt.kernel(dkdvSpec(D)), rt.kernel(dqSpec(D))]);
  const rows = B * T * H;
  const [nx, ny] = spread(Math.ceil(rows / 256));
  rec.dispatch(delta, [args.out, args.dOut, args.scratch], [u(T), u(H), u(rows), u(nx)], [nx, ny]);
  const s2 = args.scale * LOG2E;
  rec.dispatch(
    dkdv,
    [args.q, args.k, args.v, args.dOut, args.lse, args.scratch, args.dk, args.dv],
    [u(T), u(H), u(HKV), u(H / HKV), u(Math.ceil(T / kv.bq)), f(s2)],
    [nKB, HKV, B],
  );
  rec.dispatch(
    dq,
    [args.q, args.k, args.v, args.dOut, args.lse, args.scratch, args.dq],
    [u(T), u(H), u(HKV), u(H / HKV), u(nQBq), f(s2), f(args.scale)],
    [nQBq, H, B],
  );
}

// ───────────────────────────── attention over a KV cache ─────────────────────────────

/** Split-key decode kernel: NT invocations in groups of GS lanes (each VPL vec4s of the head), KPR keys per group per round. */
function decodeConfig(d: number): { dp: number; nt: number; gs: number; vpl: number; kpr: number } {
  const dp = paddedDim(d);
  const gs = Math.min(8, dp / 4);
  const vpl = dp / 4 / gs;
  return { dp, nt: dp === 256 ? 128 : 256, gs, vpl, kpr: dp === 256 ? 2 : 4 };
}

function decodeSpecSource(d: number): KernelSpec {
  const { dp, nt, gs, vpl, kpr } = decodeConfig(d);
  const ng = nt / gs;
  const d4p = dp / 4;
  const d4 = Math.ceil(d / 4);
  const perRound = ng * kpr;
  // lane s holds vec4s s + v·gs of the head; those ≥ d4 are zero
  const vecIdx = (v: number) => `(s + ${v * gs}u)`;
  const guardVec = (v: number, expr: string) => (d4 < d4p ? `select(vec4f(0.0), ${expr}, ${vecIdx(v)} < ${d4}u)` : expr);
  const safeVec = (v: number) => (d4 < d4p ? `min(${vecIdx(v)}, ${d4 - 1}u)` : vecIdx(v));
  const code = /* wgsl */ `
struct Params { T: u32, S: u32, H: u32, HKV: u32, group: u32, scale2: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read> keyStart: array<i32>;
@group(0) @binding(6) var<storage, read> keyEnd: array<i32>;

const NEG = -1e30;
const D = ${d}u;
const GS = ${gs}u;
const NG = ${ng}u;
const NT = ${nt}u;
var<workgroup> part: array<f32, ${2 * nt * kpr}>;
var<workgroup> cm: array<f32, ${ng}>;
var<workgroup> cl: array<f32, ${ng}>;
var<workgroup> ca: array<vec4f, ${ng * d4p}>;

@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let tq = wg.x;
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let g = t / GS;   // key group
  let s = t % GS;   // lane in the group
  let qBase = ((b * P.T + tq) * P.H + h) * D;
  ${range(vpl)
    .map((v) => `let qv${v} = ${guardVec(v, loadVec4('q', 'qBase', safeVec(v), d))} * P.scale2;`)
    .join('\n  ')}
  let lo = max(keyStart[b], 0);
  let hi = min(keyEnd[b] + i32(tq), i32(P.S) - 1);
  let n = u32(max(hi - lo + 1, 0));
  let rounds = (n + ${perRound - 1}u) / ${perRound}u;
  let kStride = P.HKV * D;
  let kOff = b * P.S * kStride + hk * D;
  var m = NEG;
  var l = 0.0;
  ${range(vpl)
    .map((v) => `var acc${v} = vec4f(0.0);`)
    .join(' ')}
  for (var r = 0u; r < rounds; r++) {
    let buf = (r & 1u) * ${nt * kpr}u;
    let base = lo + i32(r * ${perRound}u);
    ${range(kpr)
      .map(
        (c) => `let key${c} = base + ${c * ng}i + i32(g);
    let ok${c} = key${c} <= hi;
    let kr${c} = kOff + u32(select(lo, key${c}, ok${c})) * kStride;
    part[buf + ${c * nt}u + t] = ${range(vpl)
      .map((v) => `dot(qv${v}, ${guardVec(v, loadVec4('kc', `kr${c}`, safeVec(v), d))})`)
      .join(' + ')};
    ${range(vpl)
      .map((v) => `let vv${c}_${v} = ${guardVec(v, loadVec4('vc', `kr${c}`, safeVec(v), d))};`)
      .join(' ')}`,
      )
      .join('\n    ')}
    workgroupBarrier();
    ${range(kpr)
      .map(
        (c) =>
          `var sc${c} = 0.0; for (var j = 0u; j < GS; j++) { sc${c} += part[buf + ${c * nt}u + g * GS + j]; } sc${c} = select(NEG, sc${c}, ok${c});`,
      )
      .join('\n    ')}
    let mx = max(m, ${range(kpr).reduce((acc, c) => (acc ? `max(${acc}, sc${c})` : `sc${c}`), '')});
    let alpha = exp2(m - mx);
    ${range(kpr)
      .map((c) => `let p${c} = exp2(sc${c} - mx);`)
      .join(' ')}
    l = l * alpha + ${range(kpr)
      .map((c) => `p${c}`)
      .join(' + ')};
    ${range(vpl)
      .map(
        (v) =>
          `acc${v} = acc${v} * alpha + ${range(kpr)
            .map((c) => `p${c} * vv${c}_${v}`)
            .join(' + ')};`,
      )
      .join('\n    ')}
    m = mx;
  }
  if (s == 0u) { cm[g] = m; cl[g] = l; }
  ${range(vpl)
    .map((v) => `ca[g * ${d4p}u + ${vecIdx(v)}] = acc${v};`)
    .join(' ')}
  workgroupBarrier();
  if (t < ${d4}u) {
    var mm = NEG;
    for (var j = 0u; j < NG; j++) { mm = max(mm, cm[j]); }
    var ll = 0.0;
    var oo = vec4f(0.0);
    for (var j = 0u; j < NG; j++) {
      let w = exp2(cm[j] - mm);
      ll += cl[j] * w;
      oo += ca[j * ${d4p}u + t] * w;
    }
    let res = select(vec4f(0.0), oo / ll, mm > 0.5 * NEG);
    ${storeVec4('o', 'qBase', 't', 'res', d, d)}
  }
}`;
  return { name: `attn_decode_d${d}_nt${nt}_gs${gs}_kpr${kpr}`, code, bindings: ['read', 'read', 'read', 'rw', 'read', 'read'] };
}

/** Query chunks shorter than this use the split-key decode kernel; longer ones the tiled kernel. */
const DECODE_MAX_QUERIES = 7;

/**
 * Attention of Tq new tokens per row over a KV cache. q [B·Tq, H·d]; kCache, vCache [B·S, Hkv·d]
 * (the new tokens' k, v already at slots keyEnd_b … keyEnd_b + Tq − 1); query t of row b sees slots
 * keyStart_b … keyEnd_b + t. keyStart, keyEnd: i32 [B]. out [B·Tq, H·d].
 */
export async function attentionCached(
  rt: Runtime,
  rec: Recorder,
  args: {
    batch: number;
    queryLen: number;
    cacheLen: number;
    nHeads: number;
    nKvHeads: number;
    headDim: number;
    q: Tensor;
    kCache: Tensor;
    vCache: Tensor;
    out: Tensor;
    keyStart: Tensor;
    keyEnd: Tensor;
    scale: number;
  },
): Promise<void> {
  const { batch: B, queryLen: Tq, cacheLen: S, nHeads: H, nKvHeads: HKV, headDim: D } = args;
  checkInt('batch', B, 1, 65535);
  checkInt('queryLen', Tq, 1);
  checkInt('cacheLen', S, 1);
  checkHeads(H, HKV, D);
  const op = 'attentionCached';
  checkTensor(op, 'q', args.q, B * Tq * H * D, 'f32');
  checkTensor(op, 'kCache', args.kCache, B * S * HKV * D, 'f32');
  checkTensor(op, 'vCache', args.vCache, B * S * HKV * D, 'f32');
  checkTensor(op, 'out', args.out, B * Tq * H * D, 'f32');
  checkTensor(op, 'keyStart', args.keyStart, B, 'i32');
  checkTensor(op, 'keyEnd', args.keyEnd, B, 'i32');
  const tensors = [args.q, args.kCache, args.vCache, args.out, args.keyStart, args.keyEnd];
  const s2 = args.scale * LOG2E;
  if (Tq <= DECODE_MAX_QUERIES) {
    const kernel = await rt.kernel(decodeSpec(D));
    rec.dispatch(kernel, tensors, [u(Tq), u(S), u(H), u(HKV), u(H / HKV), f(s2)], [Tq, H, B]);
    return;
  }
  const cfg = fwdConfig(D);
  const nQB = Math.ceil(Tq / cfg.bq);
  if (nQB > 65535) throw new RangeError(`${op}: queryLen ${Tq} needs more than 65535 query blocks`);
  const kernel = await rt.kernel(forwardSpec(D, 'cached'));
  rec.dispatch(kernel, tensors, [u(Tq), u(S), u(H), u(HKV), u(H / HKV), u(nQB), f(s2)], [nQB, H, B]);
}

// ───────────────────────────── RoPE and the cache write ─────────────────────────────

/** cos/sin of pos·θ^(−2i/d) for pos < maxPos, i < d/2, as f32 [maxPos, d/2, 2] (computed in float64). */
export function ropeTable(maxPos: number, headDim: number, theta: number): Float32Array {
  checkInt('maxPos', maxPos, 1);
  checkInt('headDim', headDim, 2, 256);
  if (headDim % 2 !== 0) throw new RangeError(`ropeTable: headDim must be even, got ${headDim}`);
  if (!(theta > 0)) throw new RangeError(`ropeTable: theta must be positive, got ${theta}`);
  const half = headDim / 2;
  const inv = Float64Array.from({ length: half }, (_, k) => theta ** ((-2 * k) / headDim));
  const table = new Float32Array(maxPos * half * 2);
  for (let p = 0; p < maxPos; p++) {
    for (let k = 0; k < half; k++) {
      const angle = p * inv[k];
      table[(p * half + k) * 2] = Math.cos(angle);
      table[(p * half + k) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

const ROPE: KernelSpec = {
  name: 'rope_rotate_half',
  bindings: ['rw', 'read', 'read'],
  code: /* wgsl */ `
struct Params { n: u32, heads: u32, half: u32, maxPos: u32, sign: f32, nx: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
// One invocation per (row, head, pair i): (x_i, x_{i+d/2}) rotated by sign·angle(pos, i).
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let idx = (wg.y * P.nx + wg.x) * 256u + t;
  if (idx >= P.n) { return; }
  let i = idx % P.half;
  let rh = idx / P.half;          // row · heads + head
  let row = rh / P.heads;
  let pos = positions[row];
  if (pos < 0 || u32(pos) >= P.maxPos) { return; }
  let te = (u32(pos) * P.half + i) * 2u;
  let c = table[te];
  let s = table[te + 1u] * P.sign;
  let base = rh * 2u * P.half + i;
  let a = x[base];
  let b = x[base + P.half];
  x[base] = a * c - b * s;
  x[base + P.half] = b * c + a * s;
}`,
};

/**
 * RoPE (rotate-half) in place on x [N, H·d] at positions (i32 [N]) with cos/sin from `table`
 * (`ropeTable`, f32 [maxPos, d/2, 2]); `inverse` rotates back (the backward). Rows whose position is
 * outside [0, maxPos) are left as they are.
 */
export async function rope(
  rt: Runtime,
  rec: Recorder,
  args: { x: Tensor; positions: Tensor; table: Tensor; rows: number; nHeads: number; headDim: number; inverse?: boolean },
): Promise<void> {
  const { rows: N, nHeads: H, headDim: D } = args;
  checkInt('rows', N, 1);
  checkInt('nHeads', H, 1);
  checkInt('headDim', D, 2, 256);
  if (D % 2 !== 0) throw new RangeError(`rope: headDim must be even, got ${D}`);
  checkTensor('rope', 'x', args.x, N * H * D, 'f32');
  checkTensor('rope', 'positions', args.positions, N, 'i32');
  if (args.table.dtype !== 'f32' || args.table.size % D !== 0 || args.table.size === 0) {
    throw new RangeError(
      `rope: 'table' ('${args.table.label}') must be f32 [maxPos, ${D / 2}, 2], got ${args.table.dtype} of ${args.table.size} elements`,
    );
  }
  const maxPos = args.table.size / D;
  const n = N * H * (D / 2);
  const [nx, ny] = spread(Math.ceil(n / 256));
  const kernel = await rt.kernel(ROPE);
  rec.dispatch(kernel, [args.x, args.positions, args.table], [u(n), u(H), u(D / 2), u(maxPos), f(args.inverse ? -1 : 1), u(nx)], [nx, ny]);
}

const WRITE_CACHE: KernelSpec = {
  name: 'kv_cache_write',
  bindings: ['read', 'rw', 'read'],
  code: /* wgsl */ `
struct Params { n: u32, T: u32, S: u32, W: u32, nx: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;
@group(0) @binding(3) var<storage, read> slot: array<i32>;
// cache[(b·S + slot_b + t)·W + c] = src[(b·T + t)·W + c]; slots outside [0, S) are skipped.
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let idx = (wg.y * P.nx + wg.x) * 256u + t;
  if (idx >= P.n) { return; }
  let c = idx % P.W;
  let bt = idx / P.W;
  let b = bt / P.T;
  let tt = bt % P.T;
  let dst = slot[b] + i32(tt);
  if (dst < 0 || dst >= i32(P.S)) { return; }
  cache[(b * P.S + u32(dst)) * P.W + c] = src[idx];
}`,
};

/** Write the new tokens' k or v [B·Tq, W] into the cache [B·S, W] at slots slot_b … slot_b + Tq − 1 (slot: i32 [B]). */
export async function writeCache(
  rt: Runtime,
  rec: Recorder,
  args: { src: Tensor; cache: Tensor; slot: Tensor; batch: number; queryLen: number; cacheLen: number; width: number },
): Promise<void> {
  const { batch: B, queryLen: T, cacheLen: S, width: W } = args;
  checkInt('batch', B, 1);
  checkInt('queryLen', T, 1);
  checkInt('cacheLen', S, 1);
  checkInt('width', W, 1);
  if (T > S) throw new RangeError(`writeCache: queryLen ${T} exceeds cacheLen ${S}`);
  checkTensor('writeCache', 'src', args.src, B * T * W, 'f32');
  checkTensor('writeCache', 'cache', args.cache, B * S * W, 'f32');
  checkTensor('writeCache', 'slot', args.slot, B, 'i32');
  const n = B * T * W;
  const [nx, ny] = spread(Math.ceil(n / 256));
  const kernel = await rt.kernel(WRITE_CACHE);
  rec.dispatch(kernel, [args.src, args.cache, args.slot], [u(n), u(T), u(S), u(W), u(nx)], [nx, ny]);
}

/** `forwardSpecSource`, cached by its arguments. */
const forwardSpec = memoizeSpec(forwardSpecSource);

/** `deltaSpecSource`, cached by its arguments. */
const deltaSpec = memoizeSpec(deltaSpecSource);

/** `dkdvSpecSource`, cached by its arguments. */
const dkdvSpec = memoizeSpec(dkdvSpecSource);

/** `dqSpecSource`, cached by its arguments. */
const dqSpec = memoizeSpec(dqSpecSource);

/** `decodeSpecSource`, cached by its arguments. */
const decodeSpec = memoizeSpec(decodeSpecSource);

/** @internal The kernel sources (for tests and benchmarks). */
export const attentionKernels = { forwardSpec, deltaSpec, dkdvSpec, dqSpec, decodeSpec, fwdConfig, dkdvConfig, dqConfig };
