/**
 * The two halves of a decoder layer's forward pass, shared by training (model.ts) and decoding
 * (decoder.ts); they differ only in the attention between them and in where the residual goes.
 *
 *   attentionInputs   h = RMSNorm(x)·g₁;  q, k, v = h·Wqᵀ (+bq), h·Wkᵀ (+bk), h·Wvᵀ (+bv);  RoPE on q, k
 *   mlp               h = RMSNorm(x)·g₂;  residual += (SiLU(h·Wgateᵀ) ⊙ h·Wupᵀ)·Wdownᵀ
 */
import type { ResolvedPolicyConfig } from '../transformer.js';
import { rope } from './kernels/attention.js';
import { addBias, rmsNormForward, swigluForward } from './kernels/layers.js';
import { matmul, type MatmulPath } from './kernels/matmul.js';
import type { LayerParams } from './model.js';
import type { Recorder, Runtime, Tensor } from './runtime.js';

/** Writes h, rstd and the rotated q, k and v of N tokens at `positions`. */
export async function attentionInputs(
  rt: Runtime,
  rec: Recorder,
  cfg: ResolvedPolicyConfig,
  p: LayerParams,
  t: {
    x: Tensor;
    h: Tensor;
    rstd: Tensor;
    q: Tensor;
    k: Tensor;
    v: Tensor;
    positions: Tensor;
    ropeTable: Tensor;
    N: number;
    path: MatmulPath;
  },
): Promise<void> {
  const { N, path } = t;
  const d = cfg.dModel;
  const qw = cfg.nHeads * cfg.headDim;
  const kw = cfg.nKvHeads * cfg.headDim;
  await rmsNormForward(rt, rec, { x: t.x, gain: p.inputNorm, out: t.h, rstd: t.rstd, n: N, d, eps: cfg.normEps });
  await matmul(rt, rec, { a: t.h, b: p.q, c: t.q, m: N, n: qw, k: d, transB: true, path });
  await matmul(rt, rec, { a: t.h, b: p.k, c: t.k, m: N, n: kw, k: d, transB: true, path });
  await matmul(rt, rec, { a: t.h, b: p.v, c: t.v, m: N, n: kw, k: d, transB: true, path });
  if (p.qBias) await addBias(rt, rec, { x: t.q, bias: p.qBias, n: N, c: qw });
  if (p.kBias) await addBias(rt, rec, { x: t.k, bias: p.kBias, n: N, c: kw });
  if (p.vBias) await addBias(rt, rec, { x: t.v, bias: p.vBias, n: N, c: kw });
  await rope(rt, rec, { x: t.q, positions: t.positions, table: t.ropeTable, rows: N, nHeads: cfg.nHeads, headDim: cfg.headDim });
  await rope(rt, rec, { x: t.k, positions: t.positions, table: t.ropeTable, rows: N, nHeads: cfg.nKvHeads, headDim: cfg.headDim });
}

/** The MLP of N tokens whose input is `x`, added into `residual` (which may be x itself). */
export async function mlp(
  rt: Runtime,
  rec: Recorder,
  cfg: ResolvedPolicyConfig,
  p: LayerParams,
  t: { x: Tensor; h: Tensor; rstd: Tensor; gate: Tensor; up: Tensor; act: Tensor; residual: Tensor; N: number; path: MatmulPath },
): Promise<void> {
  const { N, path } = t;
  const d = cfg.dModel;
  const f = cfg.ffnHidden;
  await rmsNormForward(rt, rec, { x: t.x, gain: p.postNorm, out: t.h, rstd: t.rstd, n: N, d, eps: cfg.normEps });
  await matmul(rt, rec, { a: t.h, b: p.gate, c: t.gate, m: N, n: f, k: d, transB: true, path });
  await matmul(rt, rec, { a: t.h, b: p.up, c: t.up, m: N, n: f, k: d, transB: true, path });
  await swigluForward(rt, rec, { gate: t.gate, up: t.up, out: t.act, count: N * f });
  await matmul(rt, rec, { a: t.act, b: p.down, c: t.residual, m: N, n: d, k: f, transB: true, accumulate: true, path });
}
