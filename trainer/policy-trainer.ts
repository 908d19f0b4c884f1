/**
 * The learner's trainable policy behind one interface, on either of two implementations:
 *
 *   tfjs    TransformerPolicy + tf.variableGrads + AdamW (wasm on CPU, tfjs-webgpu, tfjs-node): the
 *           reference implementation
 *   engine  horizon's own WebGPU engine (models/engine/): forward, objective, hand-written backward,
 *           clip and AdamW in one submit per minibatch
 * Both train the same architecture from the same initial weights, read and write the same checkpoints
 * (Hugging Face weights; AdamW moments in the portable layout of trainer/records.ts) and report the
 * same statistics, so a run can move between them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ServiceError, TrainingError } from '../core/errors.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import { selectBackend, trimGpuBufferPool, type BackendChoice } from '../models/backend.js';
import { openEngine, type EngineChoice } from '../models/engine/index.js';
import { EngineDecoder } from '../models/engine/decoder.js';
import { EngineModel } from '../models/engine/model.js';
import type { GenerationPolicy } from '../models/sampler.js';
import type { NamedTensor } from '../models/safetensors.js';
import { encodeSafetensors } from '../models/safetensors.js';
import { TransformerPolicy, parameterSpecs, type ResolvedPolicyConfig, type TokenBatch } from '../models/transformer.js';
import { loopLoss, shouldAbort, type LoopLossInputs } from './algorithms/loop.js';
import { sftLoss } from './algorithms/sft.js';
import { chunks, packRows, type PackedRows, type TrainingRow } from './batch.js';
import { AdamW, clipGlobalNorm, type AdamWOptions, type AdamWState } from './optim/adamw.js';
import { localOptimizerState, portableOptimizerState } from './records.js';

/** One minibatch of the clipped surrogate (everything of `loopLoss` except the new log-probs). */
export interface SurrogateMinibatch {
  readonly packed: PackedRows;
  readonly temperature: number;
  readonly loss: Omit<LoopLossInputs, 'newLogProbs'>;
}

/** The learner's policy, optimizer and (with a KL penalty) frozen reference. */
export interface PolicyTrainer {
  /** `tfjs (<backend>: reason)` or `engine (<adapter>: kernels)`, for the run log. */
  readonly description: string;
  readonly paramCount: number;
  /** Weights in Hugging Face names and layout. */
  getWeights(): Promise<Record<string, NamedTensor>>;
  setWeights(weights: Record<string, NamedTensor>): void;
  toSafetensors(): Promise<Uint8Array>;
  /** AdamW state in the portable checkpoint layout. */
  getOptimizerState(): Promise<AdamWState>;
  setOptimizerState(state: AdamWState): void;
  /** Freeze the current weights as the KL reference. */
  freezeReference(): Promise<void>;
  /** Per-row log-probs of every row's tokens (no gradient), under the policy or the frozen reference. */
  rowLogProbs(rows: readonly TrainingRow[], temperature: number, which?: 'policy' | 'reference'): Promise<Float32Array[]>;
  /** One supervised step (masked mean NLL) with the supervised optimizer; returns the NLL. */
  sftStep(packed: PackedRows): Promise<number>;
  /** End of the supervised stage: the RL optimizer starts fresh. */
  endSft(): void;
  /**
   * One minibatch of LOOP: loss, gradients, the abort check of step 9 of docs/loop.md (non-finite loss, KL NaN or
   * above `maxKl`) and, unless it aborts, the clipped AdamW update. `applied` is false for an aborted step
   * and for a step the engine's f16 loss scaling skipped.
   */
  trainMinibatch(
    minibatch: SurrogateMinibatch,
    maxKl: number,
  ): Promise<{ stats: Record<string, number>; gradNorm: number; applied: boolean; aborted: boolean }>;
  /** Start of an iteration's updates (clears the engine's sticky abort). */
  startUpdates(): void;
  /**
   * Whether `trainMinibatch` may be called again before the previous call resolved, with the same result
   * as in order (the engine: steps are submitted in call order and the abort is sticky on the device).
   */
  readonly pipelined: boolean;
  /** A policy holding the current weights, for evaluation episodes (the engine's decoder on the GPU). */
  evaluationPolicy(): Promise<GenerationPolicy>;
  dispose(): void;
}

/** How the trainer was chosen, for the log. */
export interface TrainerChoice {
  readonly trainer: PolicyTrainer;
  readonly tfjs: BackendChoice;
  readonly engine?: EngineChoice;
}

/**
 * The trainer for `config.backend`: the engine for `engine` (any adapter) and for `auto` when Dawn
 * finds a hardware GPU; tfjs otherwise. Throws ServiceError when `engine` is requested and unavailable.
 */
export async function createPolicyTrainer(
  config: ResolvedConfig,
  policyConfig: ResolvedPolicyConfig,
  log: (line: string) => void,
): Promise<TrainerChoice> {
  const engine = config.backend === 'auto' || config.backend === 'engine' ? await openEngine(config.backend) : undefined;
  if (engine && !engine.runtime) {
    if (config.backend === 'engine') throw new ServiceError(`backend 'engine' was requested but is unavailable: ${engine.reason}`);
    log(`GPU engine not used: ${engine.reason}`);
  }
  const tfjs = await selectBackend(engine?.runtime ? 'engine' : config.backend);
  const optim = {
    lr: config.optim.lr,
    beta1: config.optim.beta1,
    beta2: config.optim.beta2,
    eps: config.optim.eps,
    weightDecay: config.optim.weightDecay,
  };
  const sftOptim = { ...optim, lr: config.sft.lr };
  if (engine?.runtime) {
    const model = await EngineModel.create(engine.runtime, policyConfig, config.seed, { precision: config.engine.precision });
    return { trainer: new EngineTrainer(model, optim, sftOptim, config.optim.gradClip), tfjs, engine };
  }
  const policy = new TransformerPolicy(policyConfig, config.seed);
  return { trainer: new TfjsTrainer(policy, optim, sftOptim, config.optim.gradClip, tfjs), tfjs, engine };
}

// ─── tfjs ──────────────────────────────────────────────────────────────────────────────────────────

class TfjsTrainer implements PolicyTrainer {
  readonly description: string;
  readonly pipelined = false;
  readonly paramCount: number;
  private readonly optimizer: AdamW;
  private sftOptimizer: AdamW | undefined;
  private reference: TransformerPolicy | undefined;

  constructor(
    private readonly policy: TransformerPolicy,
    optim: AdamWOptions,
    private readonly sftOptim: AdamWOptions,
    private readonly gradClip: number,
    backend: BackendChoice,
  ) {
    this.description = `tfjs ${backend.name} (${backend.reason})`;
    this.paramCount = policy.paramCount;
    this.optimizer = new AdamW(policy.variables, optim);
  }

  getWeights() {
    return this.policy.getWeightsAsync();
  }

  setWeights(weights: Record<string, NamedTensor>) {
    this.policy.setWeights(weights);
  }

  toSafetensors() {
    return this.policy.toSafetensorsAsync();
  }

  async getOptimizerState() {
    return portableOptimizerState(await this.optimizer.getState(), this.policy);
  }

  setOptimizerState(state: AdamWState) {
    this.optimizer.setState(localOptimizerState(state, this.policy));
  }

  async freezeReference() {
    this.reference?.dispose();
    this.reference = new TransformerPolicy(this.policy.config, 0, { scope: 'reference' });
    this.reference.setWeights(await this.policy.getWeightsAsync());
  }

  async rowLogProbs(rows: readonly TrainingRow[], temperature: number, which: 'policy' | 'reference' = 'policy') {
    const policy = which === 'reference' ? this.reference : this.policy;
    if (!policy) throw new TrainingError('no frozen reference policy (freezeReference() was not called)');
    return logProbsOfRows(rows, async (batch) => {
      const lp = tf.tidy(() => policy.logProbs(batch, temperature));
      const data = (await lp.data()) as Float32Array;
      lp.dispose();
      return data;
    });
  }

  async sftStep(packed: PackedRows) {
    this.sftOptimizer ??= new AdamW(this.policy.variables, this.sftOptim);
    const { value, grads } = tf.variableGrads(() => sftLoss(this.policy.logProbs(packed.batch), packed.mask), this.policy.variables);
    const { grads: clipped } = await clipGlobalNorm(grads, this.gradClip);
    this.sftOptimizer.step(clipped);
    trimGpuBufferPool();
    const loss = (await value.data())[0];
    tf.dispose([value, grads, clipped]);
    return loss;
  }

  endSft() {
    this.sftOptimizer?.dispose();
    this.sftOptimizer = undefined;
  }

  async trainMinibatch(minibatch: SurrogateMinibatch, maxKl: number) {
    let stats: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const out = loopLoss({ ...minibatch.loss, newLogProbs: this.policy.logProbs(minibatch.packed.batch, minibatch.temperature) });
      stats = out.stats as unknown as Record<string, tf.Scalar>;
      return out.loss;
    }, this.policy.variables);
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(stats)) values[k] = (await v.data())[0];
    tf.dispose([value, ...Object.values(stats)]);
    if (shouldAbort(values.loss, values.approx_kl, maxKl)) {
      tf.dispose(grads);
      return { stats: values, gradNorm: Number.NaN, applied: false, aborted: true };
    }
    const { grads: clipped, norm } = await clipGlobalNorm(grads, this.gradClip);
    this.optimizer.step(clipped);
    trimGpuBufferPool();
    tf.dispose([grads, clipped]);
    return { stats: values, gradNorm: norm, applied: true, aborted: false };
  }

  startUpdates() {}

  async evaluationPolicy() {
    return this.policy;
  }

  dispose() {
    this.endSft();
    this.optimizer.dispose();
    this.reference?.dispose();
    this.policy.dispose();
  }
}

// ─── engine ────────────────────────────────────────────────────────────────────────────────────────

class EngineTrainer implements PolicyTrainer {
  readonly description: string;
  readonly pipelined = true;
  readonly paramCount: number;
  private reference: EngineModel | undefined;
  private decoder: EngineDecoder | undefined;
  private inSft = false;
  /** Hugging Face layout → the portable optimizer layout ([in, out] for linear weights, as tfjs stores them). */
  private readonly linear: ReadonlySet<string>;

  constructor(
    private readonly model: EngineModel,
    private readonly optim: AdamWOptions,
    private readonly sftOptim: AdamWOptions,
    private readonly gradClip: number,
  ) {
    this.description = `engine (${model.description})`;
    this.paramCount = model.paramCount;
    this.linear = new Set(
      parameterSpecs(model.config)
        .filter((s) => s.kind === 'linear')
        .map((s) => s.name),
    );
    model.setOptimizer({ ...optim, gradClip });
  }

  getWeights() {
    return this.model.getWeights();
  }

  setWeights(weights: Record<string, NamedTensor>) {
    this.model.setWeights(weights);
  }

  async toSafetensors() {
    return encodeSafetensors(await this.model.getWeights(), { format: 'pt', 'horizon.model_config': JSON.stringify(this.model.config) });
  }

  async getOptimizerState(): Promise<AdamWState> {
    const state = await this.model.getOptimizerState();
    const tensors: Record<string, NamedTensor> = {};
    for (const [key, tensor] of Object.entries(state.tensors)) tensors[key] = this.linear.has(key.slice(2)) ? transposed(tensor) : tensor;
    return { step: state.step, tensors };
  }

  setOptimizerState(state: AdamWState) {
    const tensors: Record<string, NamedTensor> = {};
    for (const [key, tensor] of Object.entries(state.tensors)) tensors[key] = this.linear.has(key.slice(2)) ? transposed(tensor) : tensor;
    this.model.setOptimizerState({ step: state.step, tensors });
  }

  async freezeReference() {
    this.reference?.dispose();
    this.reference = await EngineModel.create(this.model.rt, this.model.config, 0, { precision: this.model.matmulPath });
    this.reference.setWeights(await this.model.getWeights());
  }

  async rowLogProbs(rows: readonly TrainingRow[], temperature: number, which: 'policy' | 'reference' = 'policy') {
    const model = which === 'reference' ? this.reference : this.model;
    if (!model) throw new TrainingError('no frozen reference policy (freezeReference() was not called)');
    return logProbsOfRows(rows, (batch) => model.logProbs(batch, temperature));
  }

  async sftStep(packed: PackedRows) {
    if (!this.inSft) {
      this.inSft = true;
      this.model.setOptimizer({ ...this.sftOptim, gradClip: this.gradClip });
    }
    const report = await this.model.trainNll(packed.batch, packed.mask);
    return report.stats.nll;
  }

  endSft() {
    if (!this.inSft) return;
    this.inSft = false;
    this.model.resetOptimizer();
    this.model.setOptimizer({ ...this.optim, gradClip: this.gradClip });
  }

  async trainMinibatch(minibatch: SurrogateMinibatch, maxKl: number) {
    // One submit: the abort is decided on the GPU, so the update does not wait for a read-back.
    const report = await this.model.trainMinibatch(engineBatch(minibatch), maxKl);
    return { stats: report.stats, gradNorm: report.gradNorm, applied: report.applied, aborted: report.aborted };
  }

  startUpdates() {
    this.model.resetAbort();
  }

  async evaluationPolicy() {
    // The decoder reads the model's weights as they are at each call.
    this.decoder ??= await EngineDecoder.create(this.model);
    return this.decoder;
  }

  dispose() {
    this.reference?.dispose();
    this.decoder?.dispose();
    this.model.dispose();
  }
}

/**
 * The engine's form of a minibatch: the same CPU-side constants `loopLoss` derives (per-token weights
 * mask/(M·|a(x)|) or the row weights, output-token and active-row counts, compact turn slots).
 */
export function engineBatch(minibatch: SurrogateMinibatch) {
  const { packed, loss } = minibatch;
  const B = packed.batch.batchSize;
  const T = packed.batch.seqLen;
  const tokenWeights = new Float32Array(B * T);
  const turnSlots = new Int32Array(B * T).fill(-1);
  let outputTokenCount = 0;
  let activeRowCount = 0;
  let maxTurnSlots = 1;
  for (let b = 0; b < B; b++) {
    let n = 0;
    const slots = new Map<number, number>();
    for (let t = 0; t < T; t++) {
      const k = b * T + t;
      if (!(loss.mask[k] > 0)) continue;
      n++;
      if (loss.ratio === 'turn') {
        const turn = loss.turnIds[k];
        if (turn < 0)
          throw new TrainingError(
            `output token at row ${b}, position ${t} has turn id ${turn}; per-turn ratios need a turn ≥ 0 on every output token`,
          );
        if (!slots.has(turn)) slots.set(turn, slots.size);
        turnSlots[k] = slots.get(turn)!;
      }
    }
    maxTurnSlots = Math.max(maxTurnSlots, slots.size);
    if (n === 0) continue;
    outputTokenCount += n;
    activeRowCount++;
    const weight = loss.rowWeights ? loss.rowWeights[b] : 1 / (loss.divisor * n);
    for (let t = 0; t < T; t++) if (loss.mask[b * T + t] > 0) tokenWeights[b * T + t] = weight;
  }
  return {
    batch: packed.batch,
    temperature: minibatch.temperature,
    oldLogProbs: loss.oldLogProbs,
    mask: loss.mask,
    tokenWeights,
    advantages: loss.advantages,
    importanceWeights: loss.importanceWeights,
    refLogProbs: loss.refLogProbs,
    turnSlots: loss.ratio === 'turn' ? turnSlots : undefined,
    maxTurnSlots,
    ratio: loss.ratio,
    clipLow: loss.clipLow,
    clipHigh: loss.clipHigh,
    dualClip: loss.dualClip,
    klCoef: loss.klCoef,
    outputTokenCount,
    activeRowCount,
  };
}

/** Per-row log-probs of every row's tokens, scored in padded chunks of 64 rows by `score` ([B·T] per chunk). */
async function logProbsOfRows(rows: readonly TrainingRow[], score: (batch: TokenBatch) => Promise<Float32Array>): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(rows.length);
  for (const chunk of chunks(rows.length, 64)) {
    const packed = packRows(rows, chunk);
    const data = await score(packed.batch);
    const T = packed.batch.seqLen;
    chunk.forEach((r, b) => {
      out[r] = data.slice(b * T, b * T + rows[r].segment.tokens.length);
    });
  }
  return out;
}

/** A 2-D tensor transposed ([r, c] → [c, r]); other ranks unchanged. */
function transposed(tensor: NamedTensor): NamedTensor {
  if (tensor.shape.length !== 2) return tensor;
  const [r, c] = tensor.shape;
  const data = tensor.data as Float32Array;
  const out = new Float32Array(data.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j];
  return { ...tensor, shape: [c, r], data: out };
}
