/**
 * The training objectives on the GPU: the clipped policy-gradient surrogate of LOOP / PPO / GRPO
 * (`loopLoss` in trainer/algorithms/loop.ts, the tfjs reference) and the supervised masked mean NLL
 * (`sftLoss` in trainer/algorithms/sft.ts), each with its gradient w.r.t. the new log-probs.
 *
 * ── Surrogate ─────────────────────────────────────────────────────────────────────────────────────
 * A minibatch is B rows of T positions, flat index i = b·T + t. Inputs per token: λ_i = log p_θ (new),
 * λ°_i = log p_old, mask m_i (output token ⇔ m_i > 0), the final token weight τ_i (mask/(M·|a(x)|) or
 * the row weight, precomputed on the CPU), the optional truncated importance weight w_i (else 1) and
 * reference log-prob ρ_i; per row the advantage A_b. With o_i = [m_i > 0]:
 *
 *   d_i  = o_i ? λ_i − λ°_i : 0                                  token log-ratio
 *   ℓ_i  = d_i                                 (token)
 *        = m_i · S_b,       S_b = Σ_t d_{b,t}  (trajectory)
 *        = S_{b,σ(i)} if o_i ∧ σ(i) ≥ 0 else 0, S_{b,u} = Σ_{t: σ(t)=u} d_{b,t}  (turn; σ = turn slot)
 *   r_i  = exp(clip(ℓ_i, −20, 20))
 *   p_i  = min(u_i, c_i),  u_i = r_i·A_b,  c_i = clip(r_i, lo, hi)·A_b
 *   s_i  = A_b < 0 ? max(p_i, κ·A_b) : p_i          (dual clip κ; without it s_i = p_i)
 *   L_pol = −Σ_i (s_i·w_i)·τ_i
 *   KL:  e_i = clip(o_i ? ρ_i − λ_i : 0, −20, 20),  k3_i = (exp(e_i) − e_i) − 1,  KL = Σ_i k3_i·τ_i
 *   L    = L_pol + β·KL   (β = klCoef; the KL term enters the loss only when β > 0)
 *
 * ── Gradient (derived by hand, with tfjs's conventions at ties) ─────────────────────────────────────
 * tfjs (models/gradients.ts, same as tfjs-core's own definitions) routes min(a, b)'s gradient to a
 * where a ≤ b and to b where a > b; max(a, b)'s to a where a ≥ b; clipByValue(x, lo, hi) passes it
 * where lo ≤ x ≤ hi (inclusive); where(c, t, e) multiplies by the condition. Hence, per token,
 *
 *   ∂L/∂s_i = −τ_i·w_i
 *   ∂s_i/∂p_i = A_b < 0 ? [p_i ≥ κA_b] : 1                          (dual clip's max, ties to p)
 *   ∂L/∂r_i = g_i·[u_i ≤ c_i]·A_b + g_i·[u_i > c_i]·[lo ≤ r_i ≤ hi]·A_b,  g_i = ∂L/∂p_i
 *             (the second term is 0 in exact arithmetic: u > c needs r outside [lo, hi]; kept literal)
 *   q_i := ∂L/∂ℓ_i = ∂L/∂r_i · r_i · [−20 ≤ ℓ_i ≤ 20]
 * and through the ratio's granularity (the chain rule of the sums that built ℓ):
 *   token       ∂L/∂d_i = q_i
 *   trajectory  ∂L/∂d_i = Q_b = Σ_t q_{b,t}·m_{b,t}          for every token of row b
 *   turn        ∂L/∂d_i = G_{b,σ(i)} = Σ_{t: σ(t)=σ(i)} q_{b,t} (0 for a token without a valid slot)
 * The KL adds, with k = β·τ_i:  ∂L/∂λ_i ∋ −(k·exp(e_i) − k)·[−20 ≤ ρ_i − λ_i ≤ 20].
 * Finally ∂L/∂λ_i = o_i ? ∂L/∂d_i + KL part : 0 (exactly 0 off the output tokens, whatever λ there is,
 * even −∞), and the kernel writes s·∂L/∂λ_i with s the device loss scale (stats are unscaled).
 *
 * ── Statistics (SURROGATE_STATS, the names of `LoopLossStats`) ──────────────────────────────────────
 *   loss, policy_loss = L_pol, clipfrac = #{o ∧ ((A > 0 ∧ r > hi) ∨ (A < 0 ∧ r < lo))}/max(N, 1),
 *   dual_clip_fraction = #{o ∧ A < 0 ∧ κA > p}/max(N, 1) (0 without κ), approx_kl = −Σ d / max(R, 1),
 *   ratio_mean = Σ r·m / max(N, 1), ratio_max = max_i (o_i ? r_i : 0), kl_ref = KL (0 without ρ);
 *   N = output tokens, R = rows with an output token (both host numbers, as in prepareLossInputs).
 *
 * ── Kernels (3 dispatches, deterministic) ───────────────────────────────────────────────────────────
 *   prep   elementwise: d_i into dNewLogProbs (used as scratch until the row pass overwrites it with the
 *          gradient), and ρ_i − λ_i (masked) into scratch when there is a reference
 *   rows   one 256-thread workgroup per row: group sums (trajectory: a tree reduction; turn: tiles of
 *          256 tokens staged in workgroup memory, thread u summing slot u in token order), the terms,
 *          q, the group gradients the same way, and the row's 7 statistics by a fixed-order tree
 *   final  one workgroup folds the per-row statistics in row order into `stats`
 * Scratch (f32): [8·B row statistics | B·T masked ρ − λ | B·U turn sums S | B·U turn gradients G].
 *
 * ── NLL (SFT) ───────────────────────────────────────────────────────────────────────────────────────
 *   L = −Σ_i o_i·λ_i / N,   ∂L/∂λ_i = o_i ? −fl(1/N) : 0 (then × s).  Rows pass + final fold, as above.
 */
import { f, spread, u, type Recorder, type Runtime, type Tensor } from '../runtime.js';

/** Ratio granularity code: 0 token, 1 turn, 2 trajectory. */
export type RatioModeCode = 0 | 1 | 2;

/** The surrogate's statistics, in the order of the `stats` output. */
export const SURROGATE_STATS: readonly string[] = [
  'loss',
  'policy_loss',
  'clipfrac',
  'dual_clip_fraction',
  'approx_kl',
  'ratio_mean',
  'ratio_max',
  'kl_ref',
];

const MODE_CODE: Record<'token' | 'turn' | 'trajectory', RatioModeCode> = { token: 0, turn: 1, trajectory: 2 };

/** Log-ratios are clamped to ±this before exp (loop.ts's LOG_RATIO_LIMIT). */
const LOG_RATIO_LIMIT = 20;
const WG = 256;
/** Per-row statistics slots in scratch. */
const ROW_STATS = 8;

export interface SurrogateArgs {
  /** B. */
  rows: number;
  /** T. */
  cols: number;
  /** f32 [B·T]: log p_θ at each position (entry t is about token t). */
  newLogProbs: Tensor;
  /** f32 [B·T]. */
  oldLogProbs: Tensor;
  /** f32 [B·T]: > 0 on output tokens. */
  mask: Tensor;
  /** f32 [B·T]: the final per-token weight (mask/(M·|a(x)|) or the row weight). */
  tokenWeights: Tensor;
  /** f32 [B]. */
  advantages: Tensor;
  /** f32 [B·T], optional: truncated importance weights (constant factors of each token's term). */
  importanceWeights?: Tensor;
  /** f32 [B·T], optional: reference log-probs for the k3 KL penalty / statistic. */
  refLogProbs?: Tensor;
  /** i32 [B·T]: compact turn slot 0..U−1 of each output token (−1 elsewhere); required for 'turn'. */
  turnSlots?: Tensor;
  /** U: slots per row (required ≥ 1 for 'turn'). */
  maxTurnSlots?: number;
  ratio: 'token' | 'turn' | 'trajectory';
  clipLow: number;
  clipHigh: number;
  /** Dual clip κ > 1 (absent = off). */
  dualClip?: number;
  /** β ≥ 0 (absent = 0). */
  klCoef?: number;
  /** Output tokens in the minibatch (as prepareLossInputs counts them). */
  outputTokenCount: number;
  /** Rows with at least one output token. */
  activeRowCount: number;
  /** f32 [1+]: the loss scale s at index 0 (the gradient is multiplied by it, the stats are not). */
  lossScale: Tensor;
  /** f32 [B·T] out: s·∂L/∂newLogProbs. Must not overlap the inputs. */
  dNewLogProbs: Tensor;
  /** f32 [8] out, SURROGATE_STATS order. */
  stats: Tensor;
  /** f32 scratch of at least `surrogateScratchSize(rows, cols, maxTurnSlots)` elements. */
  scratch: Tensor;
}

/** f32 elements of scratch `surrogateLoss` needs for B rows of T tokens and U turn slots (0 unless 'turn'). */
export function surrogateScratchSize(rows: number, cols: number, maxTurnSlots = 0): number {
  return ROW_STATS * rows + rows * cols + 2 * rows * Math.max(0, maxTurnSlots);
}

/** f32 elements of scratch `nllLoss` needs. */
export function nllScratchSize(rows: number): number {
  return Math.max(1, rows);
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// WGSL
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

interface Variant {
  readonly mode: RatioModeCode;
  readonly iw: boolean;
  readonly ref: boolean;
  readonly dual: boolean;
  readonly klGrad: boolean;
}

function variantName(v: Variant): string {
  return `m${v.mode}${v.iw ? '_iw' : ''}${v.ref ? '_ref' : ''}${v.dual ? '_dual' : ''}${v.klGrad ? '_klg' : ''}`;
}

function prepKernel(ref: boolean) {
  const code = /* wgsl */ `
struct Params { n: u32, nx: u32, eOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> newLp: array<f32>;
@group(0) @binding(2) var<storage, read> oldLp: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
${ref ? '@group(0) @binding(4) var<storage, read> refLp: array<f32>;' : ''}
@group(0) @binding(${ref ? 5 : 4}) var<storage, read_write> dnew: array<f32>;
${ref ? '@group(0) @binding(6) var<storage, read_write> scr: array<f32>;' : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (w.y * P.nx + w.x) * ${WG}u + lid;
  if (i >= P.n) { return; }
  let out = mask[i] > 0.0;
  let nl = newLp[i];
  dnew[i] = select(0.0, nl - oldLp[i], out);
  ${ref ? 'scr[P.eOff + i] = select(0.0, refLp[i] - nl, out);' : ''}
}`;
  return {
    name: `objective_prep${ref ? '_ref' : ''}`,
    code,
    bindings: ref ? (['read', 'read', 'read', 'read', 'rw', 'rw'] as const) : (['read', 'read', 'read', 'rw'] as const),
  };
}

function rowKernel(v: Variant) {
  const bindings: ('read' | 'rw')[] = [];
  const decl: string[] = [];
  const add = (name: string, type: string, access: 'read' | 'rw') => {
    bindings.push(access);
    decl.push(`@group(0) @binding(${bindings.length}) var<storage, ${access === 'read' ? 'read' : 'read_write'}> ${name}: array<${type}>;`);
  };
  add('mask', 'f32', 'read');
  add('tw', 'f32', 'read');
  add('adv', 'f32', 'read');
  if (v.iw) add('iw', 'f32', 'read');
  if (v.mode === 1) add('slots', 'i32', 'read');
  add('ls', 'f32', 'read');
  add('dnew', 'f32', 'rw');
  add('scr', 'f32', 'rw');
  const L = `${LOG_RATIO_LIMIT}.0`;

  // One token's term: value contributions, q = ∂L/∂ℓ and the KL gradient.
  const term = /* wgsl */ `
struct Term { q: f32, pol: f32, kl: f32, klg: f32, clip: f32, dual: f32, r: f32 }

fn term(i: u32, A: f32, ell: f32, out: bool) -> Term {
  var o: Term;
  let r = exp(clamp(ell, -${L}, ${L}));
  let un = r * A;
  let cl = clamp(r, P.lo, P.hi) * A;
  let p = min(un, cl);
  var sv = p;
  var gp = 1.0;
  ${
    v.dual
      ? `if (A < 0.0) {
    let db = A * P.dual;
    if (!(p >= db)) { sv = db; gp = 0.0; }
    if (out && db > p) { o.dual = 1.0; }
  }`
      : ''
  }
  let tau = tw[i];
  let w = ${v.iw ? 'iw[i]' : '1.0'};
  o.pol = (sv * w) * tau;
  let g = ((-tau) * w) * gp;
  let gu = select(0.0, g, un <= cl);
  let gc = select(0.0, g, un > cl);
  let gr = gu * A + select(0.0, gc * A, r >= P.lo && r <= P.hi);
  o.q = select(0.0, gr * r, ell >= -${L} && ell <= ${L});
  o.r = r;
  o.clip = select(0.0, 1.0, out && ((A > 0.0 && r > P.hi) || (A < 0.0 && r < P.lo)));
  ${
    v.ref
      ? `let x = scr[P.eOff + i];
  let e = clamp(x, -${L}, ${L});
  let ee = exp(e);
  o.kl = ((ee - e) - 1.0) * tau;
  ${v.klGrad ? `let k = P.klCoef * tau;\n  o.klg = select(0.0, -(k * ee - k), x >= -${L} && x <= ${L});` : ''}`
      : ''
  }
  return o;
}`;

  // acc: 0 policy, 1 kl, 2 clip count, 3 dual count, 4 Σd, 5 Σ r·m, 6 max r, 7 Q (trajectory)
  const accumulate = `acc[0] += o.pol; acc[1] += o.kl; acc[2] += o.clip; acc[3] += o.dual; acc[5] += o.r * m; if (out) { acc[6] = max(acc[6], o.r); }`;

  const reduce8 = /* wgsl */ `
  for (var k = 0u; k < 8u; k++) { red[k * ${WG}u + lid] = acc[k]; }
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) {
      for (var k = 0u; k < 8u; k++) {
        let a = red[k * ${WG}u + lid];
        let c = red[k * ${WG}u + lid + st];
        red[k * ${WG}u + lid] = select(a + c, max(a, c), k == 6u);
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var k = 0u; k < 7u; k++) { scr[b * 8u + k] = red[k * ${WG}u]; }
    scr[b * 8u + 7u] = 0.0;
  }`;

  let body: string;
  if (v.mode === 0) {
    body = /* wgsl */ `
  for (var t = lid; t < T; t += ${WG}u) {
    let i = base + t;
    let m = mask[i];
    let out = m > 0.0;
    let d = dnew[i];
    acc[4] += d;
    let o = term(i, A, d, out);
    ${accumulate}
    dnew[i] = select(0.0, s * (o.q + o.klg), out);
  }
  ${reduce8}`;
  } else if (v.mode === 2) {
    body = /* wgsl */ `
  var dsum = 0.0;
  for (var t = lid; t < T; t += ${WG}u) { dsum += dnew[base + t]; }
  acc[4] = dsum;
  red[lid] = dsum;
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { red[lid] = red[lid] + red[lid + st]; }
  }
  workgroupBarrier();
  let S = red[0];
  workgroupBarrier();
  for (var t = lid; t < T; t += ${WG}u) {
    let i = base + t;
    let m = mask[i];
    let out = m > 0.0;
    let o = term(i, A, S * m, out);
    ${accumulate}
    acc[7] += o.q * m;
    dnew[i] = o.klg;
  }
  ${reduce8}
  let Q = red[7u * ${WG}u];
  for (var t = lid; t < T; t += ${WG}u) {
    let i = base + t;
    dnew[i] = select(0.0, s * (Q + dnew[i]), mask[i] > 0.0);
  }`;
  } else {
    body = /* wgsl */ `
  let U = P.U;
  let tiles = (T + ${WG - 1}u) / ${WG}u;
  let rowU = b * U;
  // Phase 1: S_u = Σ_{t: σ(t) = u} d_t, in token order.
  for (var c0 = 0u; c0 < U; c0 += ${WG}u) {
    let u = c0 + lid;
    var g = 0.0;
    for (var tile = 0u; tile < tiles; tile++) {
      let t = tile * ${WG}u + lid;
      var dv = 0.0;
      var sl = -1;
      if (t < T) {
        let i = base + t;
        dv = dnew[i];
        if (c0 == 0u) { acc[4] += dv; }
        let sr = slots[i];
        if (mask[i] > 0.0 && sr >= 0 && u32(sr) < U) { sl = sr; }
      }
      tq[lid] = dv;
      ts[lid] = sl;
      workgroupBarrier();
      if (u < U) {
        let n = min(${WG}u, T - tile * ${WG}u);
        for (var k = 0u; k < n; k++) { if (ts[k] == i32(u)) { g += tq[k]; } }
      }
      workgroupBarrier();
    }
    if (u < U) { scr[P.sOff + rowU + u] = g; }
  }
  storageBarrier();
  workgroupBarrier();
  // Phase 2: terms, statistics, and G_u = Σ_{t: σ(t) = u} q_t.
  for (var c0 = 0u; c0 < U; c0 += ${WG}u) {
    let u = c0 + lid;
    var g = 0.0;
    for (var tile = 0u; tile < tiles; tile++) {
      let t = tile * ${WG}u + lid;
      var qv = 0.0;
      var sl = -1;
      if (t < T) {
        let i = base + t;
        let m = mask[i];
        let out = m > 0.0;
        let sr = slots[i];
        if (out && sr >= 0 && u32(sr) < U) { sl = sr; }
        var ell = 0.0;
        if (sl >= 0) { ell = scr[P.sOff + rowU + u32(sl)]; }
        let o = term(i, A, ell, out);
        if (c0 == 0u) {
          ${accumulate}
          dnew[i] = o.klg;
        }
        qv = o.q;
      }
      tq[lid] = qv;
      ts[lid] = sl;
      workgroupBarrier();
      if (u < U) {
        let n = min(${WG}u, T - tile * ${WG}u);
        for (var k = 0u; k < n; k++) { if (ts[k] == i32(u)) { g += tq[k]; } }
      }
      workgroupBarrier();
    }
    if (u < U) { scr[P.gOff + rowU + u] = g; }
  }
  storageBarrier();
  workgroupBarrier();
  ${reduce8}
  for (var t = lid; t < T; t += ${WG}u) {
    let i = base + t;
    let out = mask[i] > 0.0;
    let sr = slots[i];
    var G = 0.0;
    if (out && sr >= 0 && u32(sr) < U) { G = scr[P.gOff + rowU + u32(sr)]; }
    dnew[i] = select(0.0, s * (G + dnew[i]), out);
  }`;
  }

  const code = /* wgsl */ `
struct Params { rows: u32, cols: u32, nx: u32, U: u32, lo: f32, hi: f32, dual: f32, klCoef: f32, eOff: u32, sOff: u32, gOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
${decl.join('\n')}

var<workgroup> red: array<f32, ${8 * WG}>;
${v.mode === 1 ? `var<workgroup> tq: array<f32, ${WG}>;\nvar<workgroup> ts: array<i32, ${WG}>;` : ''}
${term}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = w.y * P.nx + w.x;
  if (b >= P.rows) { return; }
  let T = P.cols;
  let base = b * T;
  let A = adv[b];
  let s = ls[0];
  var acc: array<f32, 8>;
  for (var k = 0u; k < 8u; k++) { acc[k] = 0.0; }
  ${body}
}`;
  return { name: `objective_rows_${variantName(v)}`, code, bindings };
}

const FINAL_KERNEL = {
  name: 'objective_final',
  bindings: ['read', 'rw'] as const,
  code: /* wgsl */ `
struct Params { rows: u32, nOut: f32, nAct: f32, klCoef: f32, flags: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scr: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
var<workgroup> red: array<f32, ${7 * WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc: array<f32, 7>;
  for (var k = 0u; k < 7u; k++) { acc[k] = 0.0; }
  for (var b = lid; b < P.rows; b += ${WG}u) {
    for (var k = 0u; k < 7u; k++) {
      let x = scr[b * 8u + k];
      acc[k] = select(acc[k] + x, max(acc[k], x), k == 6u);
    }
  }
  for (var k = 0u; k < 7u; k++) { red[k * ${WG}u + lid] = acc[k]; }
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) {
      for (var k = 0u; k < 7u; k++) {
        let a = red[k * ${WG}u + lid];
        let c = red[k * ${WG}u + lid + st];
        red[k * ${WG}u + lid] = select(a + c, max(a, c), k == 6u);
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let hasRef = (P.flags & 1u) != 0u;
    let hasDual = (P.flags & 2u) != 0u;
    let klActive = (P.flags & 4u) != 0u;
    let pol = -red[0];
    let kl = select(0.0, red[${WG}u], hasRef);
    stats[0] = select(pol, pol + kl * P.klCoef, klActive);
    stats[1] = pol;
    stats[2] = red[${2 * WG}u] / P.nOut;
    stats[3] = select(0.0, red[${3 * WG}u] / P.nOut, hasDual);
    stats[4] = -red[${4 * WG}u] / P.nAct;
    stats[5] = red[${5 * WG}u] / P.nOut;
    stats[6] = red[${6 * WG}u];
    stats[7] = kl;
  }
}`,
};

const NLL_ROWS_KERNEL = {
  name: 'objective_nll_rows',
  bindings: ['read', 'read', 'read', 'rw', 'rw'] as const,
  code: /* wgsl */ `
struct Params { rows: u32, cols: u32, nx: u32, invN: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> lp: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> ls: array<f32>;
@group(0) @binding(4) var<storage, read_write> dnew: array<f32>;
@group(0) @binding(5) var<storage, read_write> scr: array<f32>;
var<workgroup> red: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = w.y * P.nx + w.x;
  if (b >= P.rows) { return; }
  let base = b * P.cols;
  let gradient = -P.invN * ls[0];
  var acc = 0.0;
  for (var t = lid; t < P.cols; t += ${WG}u) {
    let i = base + t;
    let out = mask[i] > 0.0;
    if (out) { acc += lp[i]; }
    dnew[i] = select(0.0, gradient, out);
  }
  red[lid] = acc;
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { red[lid] = red[lid] + red[lid + st]; }
  }
  if (lid == 0u) { scr[b] = red[0]; }
}`,
};

const NLL_FINAL_KERNEL = {
  name: 'objective_nll_final',
  bindings: ['read', 'rw'] as const,
  code: /* wgsl */ `
struct Params { rows: u32, n: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scr: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
var<workgroup> red: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var b = lid; b < P.rows; b += ${WG}u) { acc += scr[b]; }
  red[lid] = acc;
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { red[lid] = red[lid] + red[lid + st]; }
  }
  if (lid == 0u) { stats[0] = -red[0] / P.n; }
}`,
};

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Host wrappers
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

function check(cond: boolean, message: string): void {
  if (!cond) throw new RangeError(message);
}

function checkTensor(fn: string, name: string, t: Tensor, size: number, dtype: 'f32' | 'i32' = 'f32', exact = true): void {
  check(t.dtype === dtype, `${fn}: ${name} '${t.label}' is ${t.dtype}, expected ${dtype}`);
  check(
    exact ? t.size === size : t.size >= size,
    `${fn}: ${name} '${t.label}' has ${t.size} elements, expected ${exact ? '' : 'at least '}${size}`,
  );
}

function overlaps(a: Tensor, b: Tensor): boolean {
  return a.bufferId === b.bufferId && a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
}

function checkDistinct(fn: string, outputs: Tensor[], inputs: Tensor[]): void {
  outputs.forEach((o, k) => {
    for (const t of [...inputs, ...outputs.slice(k + 1)]) {
      if (overlaps(o, t))
        throw new RangeError(`${fn}: '${o.label}' overlaps '${t.label}'; outputs and scratch must not alias each other or an input`);
    }
  });
}

function checkShape(fn: string, rows: number, cols: number): void {
  check(Number.isInteger(rows) && rows >= 1, `${fn}: rows must be an integer ≥ 1, got ${rows}`);
  check(Number.isInteger(cols) && cols >= 1, `${fn}: cols must be an integer ≥ 1, got ${cols}`);
}

/**
 * Records the surrogate loss, its statistics and s·∂L/∂newLogProbs (3 dispatches). See the module
 * comment for the formulas. Host-side arguments are validated like `prepareLossInputs` does.
 */
export async function surrogateLoss(rt: Runtime, rec: Recorder, args: SurrogateArgs): Promise<void> {
  const fn = 'surrogateLoss';
  const { rows: B, cols: T } = args;
  checkShape(fn, B, T);
  const N = B * T;
  checkTensor(fn, 'newLogProbs', args.newLogProbs, N);
  checkTensor(fn, 'oldLogProbs', args.oldLogProbs, N);
  checkTensor(fn, 'mask', args.mask, N);
  checkTensor(fn, 'tokenWeights', args.tokenWeights, N);
  checkTensor(fn, 'advantages', args.advantages, B);
  if (args.importanceWeights) checkTensor(fn, 'importanceWeights', args.importanceWeights, N);
  if (args.refLogProbs) checkTensor(fn, 'refLogProbs', args.refLogProbs, N);
  checkTensor(fn, 'lossScale', args.lossScale, 1, 'f32', false);
  checkTensor(fn, 'dNewLogProbs', args.dNewLogProbs, N);
  checkTensor(fn, 'stats', args.stats, SURROGATE_STATS.length, 'f32', false);
  const mode = MODE_CODE[args.ratio];
  check(mode !== undefined, `${fn}: ratio must be 'token', 'turn' or 'trajectory', got '${String(args.ratio)}'`);
  let U = 0;
  if (mode === 1) {
    check(args.turnSlots !== undefined, `${fn}: ratio 'turn' needs turnSlots`);
    checkTensor(fn, 'turnSlots', args.turnSlots!, N, 'i32');
    U = args.maxTurnSlots ?? 0;
    check(Number.isInteger(U) && U >= 1, `${fn}: ratio 'turn' needs maxTurnSlots ≥ 1, got ${args.maxTurnSlots}`);
  }
  checkTensor(fn, 'scratch', args.scratch, surrogateScratchSize(B, T, U), 'f32', false);
  check(
    args.clipLow > 0 && args.clipLow <= 1 && args.clipHigh >= 1,
    `${fn}: clip bounds must satisfy 0 < lo ≤ 1 ≤ hi, got [${args.clipLow}, ${args.clipHigh}]`,
  );
  check(args.dualClip === undefined || args.dualClip > 1, `${fn}: dualClip must be > 1, got ${args.dualClip}`);
  const klCoef = args.klCoef ?? 0;
  check(klCoef >= 0 && Number.isFinite(klCoef), `${fn}: klCoef must be finite and ≥ 0, got ${klCoef}`);
  check(!(klCoef > 0 && args.refLogProbs === undefined), `${fn}: klCoef > 0 needs refLogProbs`);
  check(
    Number.isInteger(args.outputTokenCount) && args.outputTokenCount >= 0,
    `${fn}: outputTokenCount must be an integer ≥ 0, got ${args.outputTokenCount}`,
  );
  check(
    Number.isInteger(args.activeRowCount) && args.activeRowCount >= 0 && args.activeRowCount <= B,
    `${fn}: activeRowCount must be an integer in [0, ${B}], got ${args.activeRowCount}`,
  );
  const inputs = [
    args.newLogProbs,
    args.oldLogProbs,
    args.mask,
    args.tokenWeights,
    args.advantages,
    args.lossScale,
    args.importanceWeights,
    args.refLogProbs,
    args.turnSlots,
  ].filter((t): t is Tensor => t !== undefined);
  checkDistinct(fn, [args.dNewLogProbs, args.scratch, args.stats], inputs);

  const ref = args.refLogProbs !== undefined;
  const variant: Variant = {
    mode,
    iw: args.importanceWeights !== undefined,
    ref,
    dual: args.dualClip !== undefined,
    klGrad: ref && klCoef > 0,
  };
  const eOff = ROW_STATS * B;
  const sOff = eOff + N;
  const gOff = sOff + B * U;

  const prepSpec = prepKernel(ref);
  const prep = await rt.kernel(prepSpec);
  const [px, py] = spread(Math.ceil(N / WG));
  const prepTensors = ref
    ? [args.newLogProbs, args.oldLogProbs, args.mask, args.refLogProbs!, args.dNewLogProbs, args.scratch]
    : [args.newLogProbs, args.oldLogProbs, args.mask, args.dNewLogProbs];
  rec.dispatch(prep, prepTensors, [u(N), u(px), u(eOff)], [px, py]);

  const rowsKernel = await rt.kernel(rowKernel(variant));
  const rowTensors: Tensor[] = [args.mask, args.tokenWeights, args.advantages];
  if (variant.iw) rowTensors.push(args.importanceWeights!);
  if (mode === 1) rowTensors.push(args.turnSlots!);
  rowTensors.push(args.lossScale, args.dNewLogProbs, args.scratch);
  const [rx, ry] = spread(B);
  rec.dispatch(
    rowsKernel,
    rowTensors,
    [u(B), u(T), u(rx), u(U), f(args.clipLow), f(args.clipHigh), f(args.dualClip ?? 0), f(klCoef), u(eOff), u(sOff), u(gOff)],
    [rx, ry],
  );

  const final = await rt.kernel(FINAL_KERNEL);
  const flags = (ref ? 1 : 0) | (variant.dual ? 2 : 0) | (variant.klGrad ? 4 : 0);
  rec.dispatch(
    final,
    [args.scratch, args.stats],
    [u(B), f(Math.max(args.outputTokenCount, 1)), f(Math.max(args.activeRowCount, 1)), f(klCoef), u(flags)],
    1,
  );
}

/**
 * Records the SFT loss L = −Σ mask·λ / N into stats[0] and s·∂L/∂λ into dNewLogProbs (2 dispatches),
 * as `sftLoss` (which refuses a batch without output tokens; so does this).
 */
export async function nllLoss(
  rt: Runtime,
  rec: Recorder,
  args: {
    rows: number;
    cols: number;
    newLogProbs: Tensor;
    mask: Tensor;
    outputTokenCount: number;
    lossScale: Tensor;
    dNewLogProbs: Tensor;
    stats: Tensor;
    scratch: Tensor;
  },
): Promise<void> {
  const fn = 'nllLoss';
  const { rows: B, cols: T } = args;
  checkShape(fn, B, T);
  const N = B * T;
  checkTensor(fn, 'newLogProbs', args.newLogProbs, N);
  checkTensor(fn, 'mask', args.mask, N);
  checkTensor(fn, 'lossScale', args.lossScale, 1, 'f32', false);
  checkTensor(fn, 'dNewLogProbs', args.dNewLogProbs, N);
  checkTensor(fn, 'stats', args.stats, 1, 'f32', false);
  checkTensor(fn, 'scratch', args.scratch, nllScratchSize(B), 'f32', false);
  check(
    Number.isInteger(args.outputTokenCount) && args.outputTokenCount >= 1,
    `${fn}: outputTokenCount must be an integer ≥ 1 (the batch needs a demonstrated token), got ${args.outputTokenCount}`,
  );
  checkDistinct(fn, [args.dNewLogProbs, args.scratch, args.stats], [args.newLogProbs, args.mask, args.lossScale]);
  const rows = await rt.kernel(NLL_ROWS_KERNEL);
  const [rx, ry] = spread(B);
  rec.dispatch(
    rows,
    [args.newLogProbs, args.mask, args.lossScale, args.dNewLogProbs, args.scratch],
    [u(B), u(T), u(rx), f(Math.fround(1 / args.outputTokenCount))],
    [rx, ry],
  );
  const final = await rt.kernel(NLL_FINAL_KERNEL);
  rec.dispatch(final, [args.scratch, args.stats], [u(B), f(args.outputTokenCount)], 1);
}
