/**
 * The optimizer step on the GPU over flat buffers: parameters θ, gradients g and AdamW's moments m, v
 * share one layout, so a chunk of each at the same offsets is updated by one dispatch. Gradients arrive
 * multiplied by the loss scale σ (mixed precision); everything the host needs to know about the step
 * lives on the device, so a step never waits for a read-back.
 *
 * Device state `state` f32 [4] = [σ, goodSteps, skippedSteps, appliedSteps]; per-step `info` f32 [4] =
 * [‖g‖, clipCoef, applied (1/0), σ_used].
 *
 *   sumSquares     Σ_j g_j² over all chunks, deterministically: stage 1, one workgroup per block of
 *                  4096 elements (16 coalesced loads per thread, fixed-order tree) → partials; stage 2,
 *                  one workgroup folds the partials in index order (strided accumulators + tree).
 *   stepDecision   ‖g‖ = √(Σ g²)/σ (the norm of the true gradient g/σ). If it is not finite (overflow in
 *                  the scaled gradient): the step is skipped, σ ← max(σ/2, 1), goodSteps ← 0,
 *                  skippedSteps += 1. Otherwise appliedSteps += 1, goodSteps += 1 and, with dynamic
 *                  scaling, σ ← min(2σ, 2²⁴) and goodSteps ← 0 once goodSteps reaches the growth interval.
 *                  clipCoef is `clipGlobalNorm`'s (trainer/optim/adamw.ts) scale exactly:
 *                      clipCoef = maxNorm/‖g‖ if ‖g‖ is finite and ‖g‖ > maxNorm, else 1
 *                  (no ε; with maxNorm ≤ 0, clipping is off and clipCoef = 1).
 *                  Finiteness is tested on the bits (exponent all ones), which no fast-math assumption
 *                  can fold away.
 *   adamw          exactly `AdamW.step` (trainer/optim/adamw.ts) on ĝ = (g/σ_used)·clipCoef, with
 *                  t = appliedSteps (after stepDecision):
 *                      m ← β1·m + (1−β1)·ĝ,   v ← β2·v + (1−β2)·ĝ²
 *                      θ ← θ·(1 − ηλ) − η · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)
 *                  (decay applied to the pre-update weights, only when λ > 0; ε added to √v̂). Nothing
 *                  is written when info.applied = 0. The bias corrections 1 − βᵗ are computed on the
 *                  device as −expm1(t·ln β) (a Taylor series for |t·ln β| < 0.5, else 1 − exp), accurate
 *                  to ~1e-7 relative even where 1 − βᵗ is tiny (β2 = 0.999, t = 1), unlike 1 − pow(β, t).
 * Order in a step: sumSquares → stepDecision (once) → adamw for every chunk (they all read the same
 * state and info).
 */
import { f, spread, u, type Recorder, type Runtime, type Tensor } from '../runtime.js';

const WG = 256;
/** Elements per thread in stage 1 of sumSquares. */
const PER_THREAD = 16;
const BLOCK = WG * PER_THREAD;
const MAX_LOSS_SCALE = 2 ** 24;

/** f32 elements of `partial` that `sumSquares` needs for chunks of these sizes. */
export function sumSquaresScratchSize(counts: readonly number[]): number {
  return Math.max(
    1,
    counts.reduce((a, n) => a + Math.ceil(n / BLOCK), 0),
  );
}

const SUMSQ_BLOCKS = {
  name: `optim_sumsq_blocks_${PER_THREAD}`,
  bindings: ['read', 'rw'] as const,
  code: /* wgsl */ `
struct Params { n: u32, base: u32, nx: u32, blocks: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> red: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) lid: u32) {
  let blk = w.y * P.nx + w.x;
  if (blk >= P.blocks) { return; }
  let start = blk * ${BLOCK}u;
  var acc = 0.0;
  for (var k = 0u; k < ${PER_THREAD}u; k++) {
    let j = start + k * ${WG}u + lid;
    if (j < P.n) { let g = x[j]; acc += g * g; }
  }
  red[lid] = acc;
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { red[lid] = red[lid] + red[lid + st]; }
  }
  if (lid == 0u) { partial[P.base + blk] = red[0]; }
}`,
};

const SUMSQ_FINAL = {
  name: 'optim_sumsq_final',
  bindings: ['read', 'rw'] as const,
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var j = lid; j < P.n; j += ${WG}u) { acc += partial[j]; }
  red[lid] = acc;
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { red[lid] = red[lid] + red[lid + st]; }
  }
  if (lid == 0u) { out[0] = red[0]; }
}`,
};

const STEP_DECISION = {
  name: 'optim_step_decision',
  bindings: ['read', 'rw', 'rw'] as const,
  code: /* wgsl */ `
struct Params { maxNorm: f32, dynamic: u32, growth: u32, maxScale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sumSq: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<f32>;

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(1)
fn main() {
  let scale = state[0];
  let ss = sumSq[0];
  let norm = sqrt(ss) / scale;
  let ok = finite(ss) && finite(norm);
  var clip = 1.0;
  if (ok && P.maxNorm > 0.0 && norm > P.maxNorm) { clip = P.maxNorm / norm; }
  info[0] = norm;
  info[1] = clip;
  info[2] = select(0.0, 1.0, ok);
  info[3] = scale;
  if (ok) {
    state[3] = state[3] + 1.0;
    var good = state[1] + 1.0;
    var next = scale;
    if (P.dynamic != 0u && good >= f32(P.growth)) { next = min(scale * 2.0, P.maxScale); good = 0.0; }
    state[0] = next;
    state[1] = good;
  } else {
    state[0] = max(scale * 0.5, 1.0);
    state[1] = 0.0;
    state[2] = state[2] + 1.0;
  }
}`,
};

/**
 * The same decision with a gate: `gate[0]` ≠ 0 (set by `abortGate`) skips the update without touching the
 * optimizer state — an aborted step is neither an overflow nor an applied step.
 */
const STEP_DECISION_GATED = {
  name: 'optim_step_decision_gated',
  bindings: ['read', 'rw', 'rw', 'read'] as const,
  code: STEP_DECISION.code
    .replace(
      '@group(0) @binding(3) var<storage, read_write> info: array<f32>;',
      '@group(0) @binding(3) var<storage, read_write> info: array<f32>;\n@group(0) @binding(4) var<storage, read> gate: array<f32>;',
    )
    .replace(
      'fn main() {',
      'fn main() {\n  if (gate[0] != 0.0) {\n    info[0] = sqrt(sumSq[0]) / state[0];\n    info[1] = 1.0;\n    info[2] = 0.0;\n    info[3] = state[0];\n    return;\n  }',
    ),
};

/**
 * LOOP's abort (step 9 of docs/loop.md) decided on the GPU, so the update needs no read-back first: with the
 * objective's statistics [loss, …, approx_kl at index 4], the step is stopped when the loss is not
 * finite, the KL estimate is NaN or above `maxKl`, or an earlier step since the last reset was stopped
 * (the flag is sticky: the rest of the iteration is skipped, as on tfjs). gate[0] = 1 then, else 0.
 */
const ABORT_GATE = {
  name: 'optim_abort_gate',
  bindings: ['read', 'rw'] as const,
  code: /* wgsl */ `
struct Params { maxKl: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn isNan(x: f32) -> bool { let b = bitcast<u32>(x); return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u; }

@compute @workgroup_size(1)
fn main() {
  let loss = stats[0];
  let kl = stats[4];
  let stop = gate[0] != 0.0 || !finite(loss) || isNan(kl) || kl > P.maxKl;
  gate[0] = select(0.0, 1.0, stop);
}`,
};

const ADAMW = {
  name: 'optim_adamw',
  bindings: ['rw', 'read', 'rw', 'rw', 'read', 'read'] as const,
  code: /* wgsl */ `
struct Params { n: u32, nx: u32, lr: f32, beta1: f32, beta2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32, lnBeta1: f32, lnBeta2: f32, eps: f32, decay: f32, hasDecay: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> info: array<f32>;
@group(0) @binding(6) var<storage, read> state: array<f32>;

// 1 − βᵗ = −expm1(t·ln β), without cancellation for small t·ln β.
fn oneMinusPow(t: f32, lnBeta: f32, beta: f32) -> f32 {
  if (beta == 0.0) { return 1.0; }
  let x = t * lnBeta;
  if (x > -0.5) {
    var s = 1.0;
    for (var k = 14; k >= 2; k--) { s = 1.0 + s * (x / f32(k)); }
    return -(x * s);
  }
  return 1.0 - exp(x);
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) lid: u32) {
  if (info[2] == 0.0) { return; }
  let j = (w.y * P.nx + w.x) * ${WG}u + lid;
  if (j >= P.n) { return; }
  let t = state[3];
  let c1 = oneMinusPow(t, P.lnBeta1, P.beta1);
  let c2 = oneMinusPow(t, P.lnBeta2, P.beta2);
  let g = (grad[j] / info[3]) * info[1];
  let mNew = m[j] * P.beta1 + g * P.oneMinusBeta1;
  let vNew = v[j] * P.beta2 + (g * g) * P.oneMinusBeta2;
  let update = (mNew / c1) / (sqrt(vNew / c2) + P.eps);
  var th = theta[j];
  if (P.hasDecay != 0u) { th = th * P.decay; }
  m[j] = mNew;
  v[j] = vNew;
  theta[j] = th - update * P.lr;
}`,
};

function check(cond: boolean, message: string): void {
  if (!cond) throw new RangeError(message);
}

function checkF32(fn: string, name: string, t: Tensor, size: number, exact = true): void {
  check(t.dtype === 'f32', `${fn}: ${name} '${t.label}' is ${t.dtype}, expected f32`);
  check(
    exact ? t.size === size : t.size >= size,
    `${fn}: ${name} '${t.label}' has ${t.size} elements, expected ${exact ? '' : 'at least '}${size}`,
  );
}

/**
 * Records Σ x² over all chunks into out[0] (2 dispatches per call plus one per chunk; deterministic).
 * `counts[k]` elements of chunk k are summed (the tensor may be longer).
 */
export async function sumSquares(
  rt: Runtime,
  rec: Recorder,
  args: { x: Tensor[]; counts: number[]; partial: Tensor; out: Tensor },
): Promise<void> {
  const fn = 'sumSquares';
  check(args.x.length === args.counts.length, `${fn}: ${args.x.length} chunks but ${args.counts.length} counts`);
  args.x.forEach((t, k) => {
    const n = args.counts[k];
    check(Number.isInteger(n) && n >= 0, `${fn}: counts[${k}] must be an integer ≥ 0, got ${n}`);
    checkF32(fn, `x[${k}]`, t, n, false);
  });
  const total = sumSquaresScratchSize(args.counts);
  checkF32(fn, 'partial', args.partial, total, false);
  checkF32(fn, 'out', args.out, 1, false);
  const blocks = await rt.kernel(SUMSQ_BLOCKS);
  let base = 0;
  args.x.forEach((t, k) => {
    const n = args.counts[k];
    const count = Math.ceil(n / BLOCK);
    if (count === 0) return;
    const [x, y] = spread(count);
    rec.dispatch(blocks, [t, args.partial], [u(n), u(base), u(x), u(count)], [x, y]);
    base += count;
  });
  if (base === 0) {
    // No element at all: Σ = 0.
    rec.clear(args.out);
    return;
  }
  const final = await rt.kernel(SUMSQ_FINAL);
  rec.dispatch(final, [args.partial, args.out], [u(base)], 1);
}

/** Records the step decision (one thread): see the module comment. */
export async function stepDecision(
  rt: Runtime,
  rec: Recorder,
  args: { sumSq: Tensor; state: Tensor; info: Tensor; maxNorm: number; dynamic: boolean; growthInterval: number },
): Promise<void> {
  const fn = 'stepDecision';
  checkF32(fn, 'sumSq', args.sumSq, 1, false);
  checkF32(fn, 'state', args.state, 4, false);
  checkF32(fn, 'info', args.info, 4, false);
  check(Number.isFinite(args.maxNorm), `${fn}: maxNorm must be finite, got ${args.maxNorm}`);
  check(
    !args.dynamic || (Number.isInteger(args.growthInterval) && args.growthInterval >= 1),
    `${fn}: growthInterval must be an integer ≥ 1, got ${args.growthInterval}`,
  );
  const kernel = await rt.kernel(STEP_DECISION);
  rec.dispatch(
    kernel,
    [args.sumSq, args.state, args.info],
    [f(args.maxNorm), u(args.dynamic ? 1 : 0), u(args.dynamic ? args.growthInterval : 0), f(MAX_LOSS_SCALE)],
    1,
  );
}

/**
 * Records the gated step decision: as `stepDecision`, except that a non-zero `gate[0]` skips the update
 * and leaves `state` as it was (info.applied = 0).
 */
export async function gatedStepDecision(
  rt: Runtime,
  rec: Recorder,
  args: { sumSq: Tensor; state: Tensor; info: Tensor; gate: Tensor; maxNorm: number; dynamic: boolean; growthInterval: number },
): Promise<void> {
  const fn = 'gatedStepDecision';
  checkF32(fn, 'sumSq', args.sumSq, 1, false);
  checkF32(fn, 'state', args.state, 4, false);
  checkF32(fn, 'info', args.info, 4, false);
  checkF32(fn, 'gate', args.gate, 1, false);
  check(Number.isFinite(args.maxNorm), `${fn}: maxNorm must be finite, got ${args.maxNorm}`);
  check(
    !args.dynamic || (Number.isInteger(args.growthInterval) && args.growthInterval >= 1),
    `${fn}: growthInterval must be an integer ≥ 1, got ${args.growthInterval}`,
  );
  const kernel = await rt.kernel(STEP_DECISION_GATED);
  rec.dispatch(
    kernel,
    [args.sumSq, args.state, args.info, args.gate],
    [f(args.maxNorm), u(args.dynamic ? 1 : 0), u(args.dynamic ? args.growthInterval : 0), f(MAX_LOSS_SCALE)],
    1,
  );
}

/** Records LOOP's abort decision into the sticky `gate` (see ABORT_GATE); `stats` holds SURROGATE_STATS. */
export async function abortGate(rt: Runtime, rec: Recorder, args: { stats: Tensor; gate: Tensor; maxKl: number }): Promise<void> {
  checkF32('abortGate', 'stats', args.stats, 5, false);
  checkF32('abortGate', 'gate', args.gate, 1, false);
  check(!Number.isNaN(args.maxKl), 'abortGate: maxKl must be a number');
  const kernel = await rt.kernel(ABORT_GATE);
  rec.dispatch(kernel, [args.stats, args.gate], [f(Math.min(args.maxKl, 3.4e38))], 1);
}

/** Records the AdamW update of one chunk of `count` elements (see the module comment). */
export async function adamw(
  rt: Runtime,
  rec: Recorder,
  args: {
    params: Tensor;
    grads: Tensor;
    m: Tensor;
    v: Tensor;
    count: number;
    info: Tensor;
    state: Tensor;
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
  },
): Promise<void> {
  const fn = 'adamw';
  const n = args.count;
  check(Number.isInteger(n) && n >= 0, `${fn}: count must be an integer ≥ 0, got ${n}`);
  for (const [name, t] of [
    ['params', args.params],
    ['grads', args.grads],
    ['m', args.m],
    ['v', args.v],
  ] as const)
    checkF32(fn, name, t, n, false);
  checkF32(fn, 'info', args.info, 4, false);
  checkF32(fn, 'state', args.state, 4, false);
  const { lr, beta1, beta2, eps, weightDecay } = args;
  check(lr > 0 && Number.isFinite(lr), `${fn}: lr must be a finite number > 0, got ${lr}`);
  check(beta1 >= 0 && beta1 < 1, `${fn}: beta1 must be in [0, 1), got ${beta1}`);
  check(beta2 >= 0 && beta2 < 1, `${fn}: beta2 must be in [0, 1), got ${beta2}`);
  check(eps > 0 && Number.isFinite(eps), `${fn}: eps must be a finite number > 0, got ${eps}`);
  check(weightDecay >= 0 && Number.isFinite(weightDecay), `${fn}: weightDecay must be a finite number ≥ 0, got ${weightDecay}`);
  if (n === 0) return;
  const kernel = await rt.kernel(ADAMW);
  const [x, y] = spread(Math.ceil(n / WG));
  rec.dispatch(
    kernel,
    [args.params, args.grads, args.m, args.v, args.info, args.state],
    [
      u(n),
      u(x),
      f(lr),
      f(beta1),
      f(beta2),
      f(1 - beta1),
      f(1 - beta2),
      f(beta1 > 0 ? Math.log(beta1) : 0),
      f(beta2 > 0 ? Math.log(beta2) : 0),
      f(eps),
      f(1 - lr * weightDecay),
      u(weightDecay > 0 ? 1 : 0),
    ],
    [x, y],
  );
}
