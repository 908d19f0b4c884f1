/// <reference types="@webgpu/types" />
/**
 * The policy transformer on horizon's own WebGPU engine: the same architecture, parameter names and
 * initialisation as `TransformerPolicy` (models/transformer.ts, the tfjs reference), trained with a
 * hand-written backward pass in one command encoder and one submit per step.
 *
 * Memory plan (allocated once; a batch larger than every earlier one allocates a bigger bucket):
 *   params / grads / adam-m / adam-v   four arenas with one layout: tensor k sits at the same offset in
 *                                      each, so the optimizer updates the flat buffers chunk by chunk
 *   activations                        what the backward reads, per layer, for the bucket's N tokens
 *   inputs                             tokens, positions, targets and the objective's per-token arrays
 *   scratch                            gradients flowing backward, reduction partials, logits chunks
 * Weights are kept in Hugging Face layout ([out, in] for linear layers), so checkpoints load and save
 * without transposes: a projection is y = x·Wᵀ (matmul NT), its backward dx = dy·W (NN), dW = dyᵀ·x (TN).
 *
 * Positions: the log-prob of token t+1 is computed at position t. The engine works in "predicting"
 * layout (entry (b, t) is about token t+1) and converts to the reference's layout (entry (b, t) is about
 * token t, entry 0 = 0) at the boundary (`toPredicting` / `fromPredicting`).
 */
import { GpuError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { decodeSafetensors, type NamedTensor } from '../safetensors.js';
import { initialValues, parameterSpecs, type ParameterSpec, type ResolvedPolicyConfig, type TokenBatch } from '../transformer.js';
import { attentionInputs, mlp } from './blocks.js';
import { describeCapabilities } from './device.js';
import { attentionBackward, attentionForward, rope, ropeTable } from './kernels/attention.js';
import {
  buildTokenIndex,
  columnSum,
  columnSumScratchSize,
  embeddingBackward,
  embeddingForward,
  rmsNormBackward,
  rmsNormForward,
  rmsNormScratchSize,
  swigluBackward,
  tokenLogProbs,
  tokenLogProbsBackward,
} from './kernels/layers.js';
import { matmul, pickMatmulPath, type MatmulPath } from './kernels/matmul.js';
import { nllLoss, nllScratchSize, surrogateLoss, surrogateScratchSize, SURROGATE_STATS } from './kernels/objective.js';
import { abortGate, adamw, gatedStepDecision, stepDecision, sumSquares, sumSquaresScratchSize } from './kernels/optim.js';
import { Arena, allocateArenas, formatBytes, type Recorder, type Runtime, type Tensor } from './runtime.js';

/** Engine options beyond the architecture. */
export interface EngineModelOptions {
  /** Matmul precision: 'auto' = f16 tensor cores where the adapter has them, else f32. */
  readonly precision?: 'auto' | 'f32' | 'f16' | 'f16-matrix';
  /**
   * false: weights only, for scoring and decoding (no gradient or optimizer memory; the train* methods
   * throw). Default true.
   */
  readonly training?: boolean;
  /** Dynamic loss scaling (on by default for f16 paths): initial scale and growth interval. */
  readonly lossScale?: { readonly initial: number; readonly growthInterval: number; readonly dynamic: boolean };
  /** Most logit elements (rows × vocabulary) materialised at once; rows are processed in chunks. */
  readonly logitBudget?: number;
}

/** AdamW hyper-parameters (config `optim.*`). */
export interface EngineOptimizerOptions {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Global gradient-norm clip (> 0). */
  readonly gradClip: number;
}

/**
 * One minibatch of the policy-gradient objective, in the reference's layout (entry (b, t) is about token
 * t of row b; see `LoopLossInputs` in trainer/algorithms/loop.ts for the meaning of each field).
 */
export interface SurrogateBatch {
  readonly batch: TokenBatch;
  readonly temperature: number;
  readonly oldLogProbs: Float32Array;
  readonly mask: Float32Array;
  /** Final per-token weight (mask/(M·|a(x)|), or the aggregation's row weight on output tokens). */
  readonly tokenWeights: Float32Array;
  readonly advantages: Float32Array;
  readonly importanceWeights?: Float32Array;
  readonly refLogProbs?: Float32Array;
  /** Compact turn slot of each output token (−1 elsewhere), for ratio 'turn'. */
  readonly turnSlots?: Int32Array;
  readonly maxTurnSlots?: number;
  readonly ratio: 'token' | 'turn' | 'trajectory';
  readonly clipLow: number;
  readonly clipHigh: number;
  readonly dualClip?: number;
  readonly klCoef?: number;
  readonly outputTokenCount: number;
  readonly activeRowCount: number;
}

/** What one training step reports (read back without stalling the next step). */
export interface StepReport {
  /** The objective's statistics (SURROGATE_STATS, or `nll` for SFT). */
  readonly stats: Record<string, number>;
  /** Global gradient norm before clipping (unscaled). */
  readonly gradNorm: number;
  /** False when the step was skipped because a gradient overflowed (the loss scale was halved). */
  readonly applied: boolean;
  readonly lossScale: number;
  /** Steps skipped for overflow since the model was created. */
  readonly skippedSteps: number;
}

/** The weight tensors of one layer (Hugging Face layout). */
export interface LayerParams {
  readonly inputNorm: Tensor;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly qBias?: Tensor;
  readonly kBias?: Tensor;
  readonly vBias?: Tensor;
  readonly o: Tensor;
  readonly postNorm: Tensor;
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly down: Tensor;
}

/** Saved activations of one layer. */
interface LayerActs {
  readonly x: Tensor; // input of the layer (residual stream) [N, d]
  readonly h1: Tensor;
  readonly rstd1: Tensor;
  readonly q: Tensor; // after RoPE
  readonly k: Tensor;
  readonly v: Tensor;
  readonly attn: Tensor;
  readonly lse: Tensor;
  readonly mid: Tensor; // x + attention
  readonly h2: Tensor;
  readonly rstd2: Tensor;
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly act: Tensor;
}

/** Everything sized by the bucket's token capacity. */
interface Bucket {
  readonly rows: number;
  readonly tokens: number;
  readonly arenas: Record<string, Arena>;
  readonly layers: LayerActs[];
  readonly xFinal: Tensor;
  readonly hFinal: Tensor;
  readonly rstdFinal: Tensor;
  readonly logits: Tensor;
  readonly logitRows: number;
  readonly lpAt: Tensor;
  readonly lseLogits: Tensor;
  // inputs
  readonly ids: Tensor;
  readonly positions: Tensor;
  readonly targets: Tensor;
  readonly old: Tensor;
  readonly mask: Tensor;
  readonly weights: Tensor;
  readonly advantages: Tensor;
  readonly importance: Tensor;
  readonly ref: Tensor;
  readonly turnSlots: Tensor;
  readonly uniqueIds: Tensor;
  readonly starts: Tensor;
  readonly order: Tensor;
  // backward scratch
  readonly dx: Tensor;
  readonly dh: Tensor;
  readonly dq: Tensor;
  readonly dk: Tensor;
  readonly dv: Tensor;
  readonly dAttn: Tensor;
  readonly dGate: Tensor;
  readonly dUp: Tensor;
  readonly dAct: Tensor;
  readonly dLp: Tensor;
  readonly dLogits: Tensor;
  readonly normPartial: Tensor;
  readonly colPartial: Tensor;
  readonly attnScratch: Tensor;
  readonly objectiveScratch: Tensor;
  readonly stats: Tensor;
}

/**
 * The policy on the engine. `train*` methods run one optimizer step each; `logProbs` scores tokens
 * without gradients. Create with `EngineModel.create`; `dispose()` frees the GPU memory.
 */
export class EngineModel {
  readonly config: ResolvedPolicyConfig;
  readonly parameterNames: readonly string[];
  readonly paramCount: number;
  readonly matmulPath: MatmulPath;
  /** One line for the log: the adapter and the chosen kernels. */
  readonly description: string;

  /** Whether gradients and optimizer state exist (see EngineModelOptions.training). */
  readonly training: boolean;
  private readonly specs: readonly ParameterSpec[];
  private readonly arenas: Record<'params' | 'grads' | 'm' | 'v' | 'misc', Arena>;
  private readonly params: Tensor[];
  private readonly grads: Tensor[];
  private readonly embedding: Tensor;
  private readonly embeddingGrad: Tensor;
  /** The output layer's matrix and its gradient: the embedding's when tied, else lm_head.weight's. */
  private readonly output: Tensor;
  private readonly outputGrad: Tensor;
  private readonly finalNorm: Tensor;
  private readonly finalNormGrad: Tensor;
  private readonly layerParams: LayerParams[];
  private readonly layerGrads: LayerParams[];
  private readonly rope: Tensor;
  private readonly lossScale: Tensor;
  private readonly optimState: Tensor;
  private readonly stepInfo: Tensor;
  private readonly sumSq: Tensor;
  /** LOOP's sticky abort flag (see `trainMinibatch`). */
  private readonly abortFlag: Tensor;
  private readonly sumSqPartial: Tensor;
  private readonly flatChunks: { offset: number; count: number }[];
  private bucket: Bucket | undefined;
  private optimizer: EngineOptimizerOptions | undefined;
  private readonly logitBudget: number;
  private readonly lossScaleOptions: { initial: number; growthInterval: number; dynamic: boolean };
  private disposed = false;

  private constructor(
    readonly rt: Runtime,
    config: ResolvedPolicyConfig,
    arenas: Record<'params' | 'grads' | 'm' | 'v' | 'misc', Arena>,
    path: { path: MatmulPath; reason: string },
    options: EngineModelOptions,
  ) {
    this.config = config;
    this.specs = parameterSpecs(config);
    this.parameterNames = this.specs.map((s) => s.name);
    this.paramCount = this.specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    this.matmulPath = path.path;
    this.description = describeCapabilities(rt.engine.caps, `${path.path} matmuls (${path.reason})`);
    this.arenas = arenas;
    this.logitBudget = options.logitBudget ?? 1 << 25;
    const f16 = path.path !== 'f32';
    this.lossScaleOptions = options.lossScale ?? { initial: f16 ? 2 ** 15 : 1, growthInterval: 1000, dynamic: f16 };
    this.params = this.specs.map((s) => arenas.params.alloc(s.name, s.shape));
    this.training = options.training ?? true;
    // Without training the gradient and moment arenas are placeholders; the views are never bound.
    this.grads = this.training ? this.specs.map((s) => arenas.grads.alloc(`grad ${s.name}`, s.shape)) : this.params;
    if (this.training) {
      arenas.m.alloc('m', [arenas.params.bytesUsed / 4]);
      arenas.v.alloc('v', [arenas.params.bytesUsed / 4]);
    }
    const index = new Map(this.parameterNames.map((n, k) => [n, k]));
    const pick = (list: Tensor[], name: string) => list[index.get(name)!];
    const maybe = (list: Tensor[], name: string) => (index.has(name) ? list[index.get(name)!] : undefined);
    const layer = (list: Tensor[], l: number): LayerParams => {
      const p = `model.layers.${l}`;
      return {
        inputNorm: pick(list, `${p}.input_layernorm.weight`),
        q: pick(list, `${p}.self_attn.q_proj.weight`),
        k: pick(list, `${p}.self_attn.k_proj.weight`),
        v: pick(list, `${p}.self_attn.v_proj.weight`),
        qBias: maybe(list, `${p}.self_attn.q_proj.bias`),
        kBias: maybe(list, `${p}.self_attn.k_proj.bias`),
        vBias: maybe(list, `${p}.self_attn.v_proj.bias`),
        o: pick(list, `${p}.self_attn.o_proj.weight`),
        postNorm: pick(list, `${p}.post_attention_layernorm.weight`),
        gate: pick(list, `${p}.mlp.gate_proj.weight`),
        up: pick(list, `${p}.mlp.up_proj.weight`),
        down: pick(list, `${p}.mlp.down_proj.weight`),
      };
    };
    this.embedding = pick(this.params, 'model.embed_tokens.weight');
    this.embeddingGrad = pick(this.grads, 'model.embed_tokens.weight');
    this.output = config.tieEmbeddings ? this.embedding : pick(this.params, 'lm_head.weight');
    this.outputGrad = config.tieEmbeddings ? this.embeddingGrad : pick(this.grads, 'lm_head.weight');
    this.finalNorm = pick(this.params, 'model.norm.weight');
    this.finalNormGrad = pick(this.grads, 'model.norm.weight');
    this.layerParams = Array.from({ length: config.nLayers }, (_, l) => layer(this.params, l));
    this.layerGrads = Array.from({ length: config.nLayers }, (_, l) => layer(this.grads, l));
    const misc = arenas.misc;
    this.rope = misc.alloc('rope table', [config.maxSeqLen, config.headDim / 2, 2]);
    rt.write(this.rope, ropeTable(config.maxSeqLen, config.headDim, config.ropeTheta));
    this.lossScale = misc.alloc('loss scale', [1]);
    this.optimState = misc.alloc('optimizer state', [4]);
    this.stepInfo = misc.alloc('step info', [4]);
    this.sumSq = misc.alloc('sum of squares', [1]);
    this.abortFlag = misc.alloc('abort flag', [1]);
    rt.write(this.abortFlag, new Float32Array(1));
    // The flat gradient buffer in chunks a binding can hold (the optimizer's unit of work).
    const maxBinding = Math.min(rt.engine.caps.maxStorageBufferBindingSize, 1 << 30);
    const chunkFloats = Math.floor(maxBinding / 4 / 64) * 64;
    const totalFloats = arenas.params.bytesUsed / 4;
    this.flatChunks = [];
    for (let offset = 0; offset < totalFloats; offset += chunkFloats)
      this.flatChunks.push({ offset, count: Math.min(chunkFloats, totalFloats - offset) });
    this.sumSqPartial = misc.alloc('sum of squares partials', [sumSquaresScratchSize(this.flatChunks.map((c) => c.count))]);
    rt.write(this.optimState, Float32Array.from([this.lossScaleOptions.initial, 0, 0, 0]));
  }

  /**
   * Build the model on `rt` with the reference's deterministic initialisation for `seed` (the same
   * weights `new TransformerPolicy(config, seed)` has). Throws GpuError when the GPU cannot hold it.
   */
  static async create(rt: Runtime, config: ResolvedPolicyConfig, seed: number, options: EngineModelOptions = {}): Promise<EngineModel> {
    const path = pickMatmulPath(rt.engine.caps, options.precision ?? 'auto');
    const specs = parameterSpecs(config);
    const footprint = specs.reduce(
      (a, s) =>
        a +
        Arena.footprint(
          rt.engine,
          s.shape.reduce((x, y) => x * y, 1),
          'f32',
        ),
      0,
    );
    const miscBytes = config.maxSeqLen * config.headDim * 4 + 64 * 1024 + sumSquaresScratchSize([Math.ceil(footprint / 4)]) * 4 + 16 * 1024;
    const arenas = await allocateArenas(rt.engine, `the ${(footprint / 4 / 1e6).toFixed(1)}M-parameter policy`, {
      params: footprint,
      grads: options.training === false ? 256 : footprint,
      m: options.training === false ? 256 : footprint,
      v: options.training === false ? 256 : footprint,
      misc: miscBytes,
    });
    const model = new EngineModel(rt, config, arenas as Record<'params' | 'grads' | 'm' | 'v' | 'misc', Arena>, path, options);
    const rng = new Rng(seed);
    specs.forEach((spec, k) => rt.write(model.params[k], initialValues(spec, config.initStd, rng)));
    return model;
  }

  /** Set the optimizer's hyper-parameters (AdamW; the moments are kept). */
  setOptimizer(options: EngineOptimizerOptions): void {
    if (!(options.gradClip > 0)) throw new RangeError(`gradient clip norm must be > 0, got ${options.gradClip}`);
    this.optimizer = { ...options };
  }

  /** Zero both AdamW moments and the step count (a fresh optimizer, e.g. after SFT). */
  resetOptimizer(): void {
    const rec = this.rt.record('reset optimizer');
    rec.clear(this.whole(this.arenas.m));
    rec.clear(this.whole(this.arenas.v));
    rec.submit();
    this.rt.write(this.optimState, Float32Array.from([this.lossScaleOptions.initial, 0, 0, 0]));
  }

  // ─── Weights ────────────────────────────────────────────────────────────────────────────────────

  /** Weights in Hugging Face names and layout, float32. */
  async getWeights(): Promise<Record<string, NamedTensor>> {
    return this.readArena(this.arenas.params, this.params, '');
  }

  /**
   * Replace every weight (Hugging Face names and layout). Everything is validated before anything is
   * written; the reference's CheckpointError messages apply (a missing, extra or mis-shaped tensor).
   */
  setWeights(weights: Record<string, NamedTensor>): void {
    validateWeights(this.specs, weights);
    this.specs.forEach((spec, k) => this.rt.write(this.params[k], weights[spec.name].data as Float32Array));
  }

  /** Load weights from a safetensors blob (Hugging Face names and layout); throws CheckpointError if malformed. */
  loadSafetensors(bytes: Uint8Array): void {
    this.setWeights(decodeSafetensors(bytes).tensors);
  }

  /** AdamW state in the portable checkpoint format (`m:<name>`, `v:<name>`, step count). */
  async getOptimizerState(): Promise<{ step: number; tensors: Record<string, NamedTensor> }> {
    const m = await this.readArena(this.arenas.m, this.params, 'm:');
    const v = await this.readArena(this.arenas.v, this.params, 'v:');
    const state = await this.rt.readNumbers(this.optimState);
    return { step: state[3], tensors: { ...m, ...v } };
  }

  /** Load a portable AdamW state (as written by `getOptimizerState` or the tfjs learner). */
  setOptimizerState(state: { step: number; tensors: Record<string, NamedTensor> }): void {
    for (const spec of this.specs) {
      for (const moment of ['m', 'v'] as const) {
        const tensor = state.tensors[`${moment}:${spec.name}`];
        if (tensor === undefined)
          throw new GpuError(`optimizer state has no '${moment}:${spec.name}'; the checkpoint does not match this model`);
      }
    }
    const mArena = this.viewsIn(this.arenas.m);
    const vArena = this.viewsIn(this.arenas.v);
    this.specs.forEach((spec, k) => {
      this.rt.write(mArena[k], state.tensors[`m:${spec.name}`].data as Float32Array);
      this.rt.write(vArena[k], state.tensors[`v:${spec.name}`].data as Float32Array);
    });
    this.rt.write(this.optimState, Float32Array.from([this.lossScaleOptions.initial, 0, 0, state.step]));
  }

  // ─── Scoring ────────────────────────────────────────────────────────────────────────────────────

  /**
   * log p(token t | tokens < t) / temperature-softmax for every position, [B·T] in the reference's
   * layout (entry (b, 0) = 0), without gradients.
   */
  async logProbs(batch: TokenBatch, temperature = 1): Promise<Float32Array> {
    this.assertLive();
    const { batchSize: B, seqLen: T } = batch;
    const pending = await this.exclusive(async () => {
      const bucket = await this.prepare(B, T);
      this.uploadTokens(bucket, batch, false);
      const rec = this.rt.record('score');
      await this.forward(rec, bucket, B, T, temperature);
      const read = rec.readLater(view(bucket.lpAt, [B * T]));
      rec.submit();
      return { read };
    });
    const lpAt = (await pending.read) as Float32Array;
    return fromPredicting(lpAt, B, T);
  }

  /**
   * Runs `record` (which uploads inputs, records and submits one step) after the previous one has
   * submitted: steps may be issued without awaiting each other (their read-backs overlap the next
   * step's GPU work), but their input uploads never interleave with another step's recording.
   */
  private async exclusive<T>(record: () => Promise<T>): Promise<T> {
    const previous = this.turn;
    let release!: () => void;
    this.turn = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await record();
    } finally {
      release();
    }
  }

  private turn: Promise<void> = Promise.resolve();

  // ─── Training ───────────────────────────────────────────────────────────────────────────────────

  /**
   * One optimizer step on the clipped policy-gradient surrogate of one minibatch: forward, objective,
   * backward, global-norm clip and AdamW in one submit. Resolves when the step's statistics have been
   * read back; the GPU work of the next step can be recorded before awaiting it.
   */
  async trainSurrogate(input: SurrogateBatch): Promise<StepReport> {
    const { statsPending, infoPending, statePending } = await this.exclusive(async () => {
      const rec = this.rt.record('train step');
      const { stats } = await this.recordSurrogate(rec, input);
      await this.optimizerStep(rec);
      const pending = { statsPending: stats, infoPending: rec.readLater(this.stepInfo), statePending: rec.readLater(this.optimState) };
      rec.submit();
      return pending;
    });
    return this.report(
      namedStats(SURROGATE_STATS, (await statsPending) as Float32Array),
      (await infoPending) as Float32Array,
      (await statePending) as Float32Array,
    );
  }

  /**
   * One minibatch of LOOP as the learner runs it, in one submit: forward, objective, backward, then the
   * abort check of step 9 of docs/loop.md on the GPU (loss not finite, KL NaN or above `maxKl`, or an earlier
   * minibatch since `resetAbort()` aborted), and the update only if it passes. `aborted` says which.
   */
  async trainMinibatch(input: SurrogateBatch, maxKl: number): Promise<StepReport & { readonly aborted: boolean }> {
    const { statsPending, infoPending, statePending, gatePending } = await this.exclusive(async () => {
      const rec = this.rt.record('minibatch');
      const { stats } = await this.recordSurrogate(rec, input);
      const bucket = this.bucket!;
      await abortGate(this.rt, rec, { stats: view(bucket.stats, [SURROGATE_STATS.length]), gate: this.abortFlag, maxKl });
      await this.optimizerStep(rec, this.abortFlag);
      const pending = {
        statsPending: stats,
        infoPending: rec.readLater(this.stepInfo),
        statePending: rec.readLater(this.optimState),
        gatePending: rec.readLater(this.abortFlag),
      };
      rec.submit();
      return pending;
    });
    const report = this.report(
      namedStats(SURROGATE_STATS, (await statsPending) as Float32Array),
      (await infoPending) as Float32Array,
      (await statePending) as Float32Array,
    );
    return { ...report, aborted: ((await gatePending) as Float32Array)[0] !== 0 };
  }

  /** Clear the sticky abort of `trainMinibatch` (at the start of an iteration's updates). */
  resetAbort(): void {
    this.rt.write(this.abortFlag, new Float32Array(1));
  }

  /** Milliseconds the host takes to record (not submit) one training step of `input`: the engine's CPU overhead. */
  async recordOnlyMs(input: SurrogateBatch): Promise<number> {
    return this.exclusive(async () => {
      const t0 = performance.now();
      const rec = this.rt.record('timing');
      await this.recordSurrogate(rec, input);
      await this.optimizerStep(rec);
      const ms = performance.now() - t0;
      rec.abandon();
      return ms;
    });
  }

  /**
   * Forward, objective and backward of one minibatch (one submit), leaving the gradients in the gradient
   * arena without an update: for checks against the reference (`gradientsOnly`, bench/engine-check.ts).
   */
  async surrogateGradients(input: SurrogateBatch): Promise<Record<string, number>> {
    const { statsPending } = await this.exclusive(async () => {
      const rec = this.rt.record('gradients');
      const { stats } = await this.recordSurrogate(rec, input);
      rec.submit();
      return { statsPending: stats };
    });
    return namedStats(SURROGATE_STATS, (await statsPending) as Float32Array);
  }

  private async recordSurrogate(rec: Recorder, input: SurrogateBatch): Promise<{ stats: Promise<unknown> }> {
    this.assertTraining();
    const { batchSize: B, seqLen: T } = input.batch;
    const bucket = await this.prepare(B, T);
    this.uploadTokens(bucket, input.batch, true);
    const N = B * T;
    const rt = this.rt;
    if (input.advantages.length !== B) throw new RangeError(`advantages has ${input.advantages.length} entries, expected ${B}`);
    for (const [name, array] of Object.entries({
      oldLogProbs: input.oldLogProbs,
      mask: input.mask,
      tokenWeights: input.tokenWeights,
      importanceWeights: input.importanceWeights,
      refLogProbs: input.refLogProbs,
      turnSlots: input.turnSlots,
    })) {
      if (array !== undefined && array.length !== N)
        throw new RangeError(`${name} has ${array.length} entries, expected ${N} for ${B} × ${T} tokens`);
    }
    if (input.ratio === 'turn' && input.turnSlots === undefined) throw new RangeError("ratio 'turn' needs turnSlots");
    rt.write(bucket.old, toPredicting(input.oldLogProbs, B, T));
    rt.write(bucket.mask, toPredicting(input.mask, B, T));
    rt.write(bucket.weights, toPredicting(input.tokenWeights, B, T));
    rt.write(bucket.advantages, input.advantages);
    if (input.importanceWeights) rt.write(bucket.importance, toPredicting(input.importanceWeights, B, T));
    if (input.refLogProbs) rt.write(bucket.ref, toPredicting(input.refLogProbs, B, T));
    if (input.turnSlots) rt.write(bucket.turnSlots, toPredictingInt(input.turnSlots, B, T, -1));
    await this.forward(rec, bucket, B, T, input.temperature);
    await surrogateLoss(rt, rec, {
      rows: B,
      cols: T,
      newLogProbs: view(bucket.lpAt, [N]),
      oldLogProbs: view(bucket.old, [N]),
      mask: view(bucket.mask, [N]),
      tokenWeights: view(bucket.weights, [N]),
      advantages: view(bucket.advantages, [B]),
      importanceWeights: input.importanceWeights ? view(bucket.importance, [N]) : undefined,
      refLogProbs: input.refLogProbs ? view(bucket.ref, [N]) : undefined,
      turnSlots: input.ratio === 'turn' ? view(bucket.turnSlots, [N]) : undefined,
      maxTurnSlots: input.maxTurnSlots,
      ratio: input.ratio,
      clipLow: input.clipLow,
      clipHigh: input.clipHigh,
      dualClip: input.dualClip,
      klCoef: input.klCoef,
      outputTokenCount: input.outputTokenCount,
      activeRowCount: input.activeRowCount,
      lossScale: this.optimState,
      dNewLogProbs: view(bucket.dLp, [N]),
      stats: view(bucket.stats, [SURROGATE_STATS.length]),
      scratch: scratchView(bucket.objectiveScratch, surrogateScratchSize(B, T, input.ratio === 'turn' ? (input.maxTurnSlots ?? 1) : 0)),
    });
    const statsPending = rec.readLater(view(bucket.stats, [SURROGATE_STATS.length]));
    await this.backward(rec, bucket, B, T, input.temperature);
    // Wrapped: an async function returning the bare promise would wait for it (and it resolves only after submit).
    return { stats: statsPending };
  }

  /**
   * One supervised step: mean negative log-likelihood of the tokens where `mask` is 1 (the reference's
   * `sftLoss`), backward, clip and AdamW.
   */
  async trainNll(batch: TokenBatch, mask: Float32Array, temperature = 1): Promise<StepReport> {
    this.assertTraining();
    const { batchSize: B, seqLen: T } = batch;
    const count = mask.reduce((a, m) => a + (m > 0 ? 1 : 0), 0);
    if (count === 0) throw new RangeError('trainNll: the batch has no demonstrated policy token (mask is all 0)');
    const { statsPending, infoPending, statePending } = await this.exclusive(async () => {
      const bucket = await this.prepare(B, T);
      this.uploadTokens(bucket, batch, true);
      this.rt.write(bucket.mask, toPredicting(mask, B, T));
      const N = B * T;
      const rec = this.rt.record('sft step');
      await this.forward(rec, bucket, B, T, temperature);
      await nllLoss(this.rt, rec, {
        rows: B,
        cols: T,
        newLogProbs: view(bucket.lpAt, [N]),
        mask: view(bucket.mask, [N]),
        outputTokenCount: count,
        lossScale: this.optimState,
        dNewLogProbs: view(bucket.dLp, [N]),
        stats: view(bucket.stats, [1]),
        scratch: scratchView(bucket.objectiveScratch, nllScratchSize(B)),
      });
      const stats = rec.readLater(view(bucket.stats, [1]));
      await this.backward(rec, bucket, B, T, temperature);
      await this.optimizerStep(rec);
      const pending = { statsPending: stats, infoPending: rec.readLater(this.stepInfo), statePending: rec.readLater(this.optimState) };
      rec.submit();
      return pending;
    });
    const stats = (await statsPending) as Float32Array;
    return this.report({ nll: stats[0] }, (await infoPending) as Float32Array, (await statePending) as Float32Array);
  }

  /** The gradients of the last step (Hugging Face names and layout, multiplied by the loss scale). For tests. */
  async lastGradients(): Promise<Record<string, NamedTensor>> {
    return this.readArena(this.arenas.grads, this.grads, '');
  }

  /** Forward, objective and backward only; the gradients as the optimizer would see them (× loss scale). For tests. */
  async gradientsOnly(input: SurrogateBatch): Promise<{ stats: Record<string, number>; grads: Record<string, NamedTensor> }> {
    const stats = await this.surrogateGradients(input);
    return { stats, grads: await this.lastGradients() };
  }

  /** Free every GPU buffer of the model. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const arena of Object.values(this.arenas)) {
      this.rt.forgetBuffer(arena.id);
      arena.destroy();
    }
    if (this.bucket)
      for (const arena of Object.values(this.bucket.arenas)) {
        this.rt.forgetBuffer(arena.id);
        arena.destroy();
      }
  }

  // ─── Internals ──────────────────────────────────────────────────────────────────────────────────

  private report(stats: Record<string, number>, info: Float32Array, state: Float32Array): StepReport {
    return { stats, gradNorm: info[0], applied: info[2] > 0, lossScale: info[3], skippedSteps: state[2] };
  }

  /** Tokens, positions and next-token targets; with `forBackward`, also the rows grouped by token id (the embedding's backward). */
  private uploadTokens(bucket: Bucket, batch: TokenBatch, forBackward: boolean): void {
    validateTokens(batch, this.config);
    const { batchSize: B, seqLen: T, tokens } = batch;
    const positions = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        positions[b * T + t] = t;
        if (t + 1 < T) targets[b * T + t] = tokens[b * T + t + 1];
      }
    }
    this.rt.write(bucket.ids, tokens);
    this.rt.write(bucket.positions, positions);
    this.rt.write(bucket.targets, targets);
    if (!forBackward) return;
    const index = buildTokenIndex(tokens, this.config.vocabSize);
    this.rt.write(bucket.uniqueIds, index.uniqueIds);
    this.rt.write(bucket.starts, index.starts);
    this.rt.write(bucket.order, index.positions);
    this.uniqueCount = index.uniqueIds.length;
  }

  private uniqueCount = 0;

  /** The forward pass with every activation the backward needs; ends with lpAt and lseLogits. */
  private async forward(rec: Recorder, bk: Bucket, B: number, T: number, temperature: number): Promise<void> {
    const rt = this.rt;
    const cfg = this.config;
    const N = B * T;
    const d = cfg.dModel;
    const qw = cfg.nHeads * cfg.headDim;
    const path = this.matmulPath;
    const shape = { batch: B, seqLen: T, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: cfg.headDim };
    const positions = view(bk.positions, [N]);
    const xFinal = view(bk.xFinal, [N, d]);
    await embeddingForward(rt, rec, { table: this.embedding, ids: view(bk.ids, [N]), out: view(bk.layers[0].x, [N, d]), n: N, d });
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = this.layerParams[l];
      const a = sizedLayer(bk.layers[l], N, cfg);
      const next = l + 1 < cfg.nLayers ? view(bk.layers[l + 1].x, [N, d]) : xFinal;
      await attentionInputs(rt, rec, cfg, p, {
        x: a.x,
        h: a.h1,
        rstd: a.rstd1,
        q: a.q,
        k: a.k,
        v: a.v,
        positions,
        ropeTable: this.rope,
        N,
        path,
      });
      await attentionForward(rt, rec, { ...shape, q: a.q, k: a.k, v: a.v, out: a.attn, lse: a.lse, scale: 1 / Math.sqrt(cfg.headDim) });
      rec.copy(a.x, a.mid, N * d * 4);
      await matmul(rt, rec, { a: a.attn, b: p.o, c: a.mid, m: N, n: d, k: qw, transB: true, accumulate: true, path });
      rec.copy(a.mid, next, N * d * 4);
      await mlp(rt, rec, cfg, p, { x: a.mid, h: a.h2, rstd: a.rstd2, gate: a.gate, up: a.up, act: a.act, residual: next, N, path });
    }
    await rmsNormForward(rt, rec, {
      x: xFinal,
      gain: this.finalNorm,
      out: view(bk.hFinal, [N, d]),
      rstd: view(bk.rstdFinal, [N]),
      n: N,
      d,
      eps: cfg.normEps,
    });
    const V = cfg.vocabSize;
    for (let start = 0; start < N; start += bk.logitRows) {
      const R = Math.min(bk.logitRows, N - start);
      const logits = view(bk.logits, [R, V]);
      // Logits in f32 whatever the matmul path: log-probs feed the PPO ratio, which must match the sampler's.
      await matmul(rt, rec, { a: rowsOf(bk.hFinal, start, R, d), b: this.output, c: logits, m: R, n: V, k: d, transB: true, path: 'f32' });
      await tokenLogProbs(rt, rec, {
        logits,
        targets: rowsOf(bk.targets, start, R, 1),
        rows: R,
        vocab: V,
        temperature,
        logProbs: rowsOf(bk.lpAt, start, R, 1),
        lse: rowsOf(bk.lseLogits, start, R, 1),
      });
    }
  }

  /** Backward from dLp (already scaled by the loss scale) into the gradient arena. */
  private async backward(rec: Recorder, bk: Bucket, B: number, T: number, temperature: number): Promise<void> {
    const rt = this.rt;
    const cfg = this.config;
    const N = B * T;
    const d = cfg.dModel;
    const qw = cfg.nHeads * cfg.headDim;
    const kw = cfg.nKvHeads * cfg.headDim;
    const f = cfg.ffnHidden;
    const V = cfg.vocabSize;
    const path = this.matmulPath;
    const shape = { batch: B, seqLen: T, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: cfg.headDim };
    const dHidden = view(bk.dh, [N, d]);
    // Norm gains and the embedding accumulate their gradients; everything else is overwritten.
    rec.clear(this.whole(this.arenas.grads));
    // Output layer: dh_final = dLogits·W, dW = dLogitsᵀ·h_final, chunk by chunk (W = E when tied).
    for (let start = 0; start < N; start += bk.logitRows) {
      const R = Math.min(bk.logitRows, N - start);
      const logits = view(bk.logits, [R, V]);
      const dLogits = view(bk.dLogits, [R, V]);
      if (N > bk.logitRows) {
        // The logits of this chunk were overwritten by later chunks: recompute them.
        await matmul(rt, rec, {
          a: rowsOf(bk.hFinal, start, R, d),
          b: this.output,
          c: logits,
          m: R,
          n: V,
          k: d,
          transB: true,
          path: 'f32',
        });
      }
      await tokenLogProbsBackward(rt, rec, {
        logits,
        targets: rowsOf(bk.targets, start, R, 1),
        lse: rowsOf(bk.lseLogits, start, R, 1),
        dLogProbs: rowsOf(bk.dLp, start, R, 1),
        dLogits,
        rows: R,
        vocab: V,
        temperature,
      });
      await matmul(rt, rec, { a: dLogits, b: this.output, c: rowsOf(dHidden, start, R, d), m: R, n: d, k: V, path });
      await matmul(rt, rec, {
        a: dLogits,
        b: rowsOf(bk.hFinal, start, R, d),
        c: this.outputGrad,
        m: V,
        n: d,
        k: R,
        transA: true,
        accumulate: start > 0,
        path,
      });
    }
    const dx = view(bk.dx, [N, d]);
    const positions = view(bk.positions, [N]);
    await rmsNormBackward(rt, rec, {
      x: view(bk.xFinal, [N, d]),
      gain: this.finalNorm,
      rstd: view(bk.rstdFinal, [N]),
      dOut: dHidden,
      dx,
      dGain: this.finalNormGrad,
      partial: scratchView(bk.normPartial, rmsNormScratchSize(N, d)),
      n: N,
      d,
      accumulateDx: false,
    });
    for (let l = cfg.nLayers - 1; l >= 0; l--) {
      const p = this.layerParams[l];
      const g = this.layerGrads[l];
      const a = sizedLayer(bk.layers[l], N, cfg);
      const dAct = view(bk.dAct, [N, f]);
      const dGate = view(bk.dGate, [N, f]);
      const dUp = view(bk.dUp, [N, f]);
      // MLP: next = mid + act·Wdᵀ
      await matmul(rt, rec, { a: dx, b: p.down, c: dAct, m: N, n: f, k: d, path });
      await matmul(rt, rec, { a: dx, b: a.act, c: g.down, m: d, n: f, k: N, transA: true, path });
      await swigluBackward(rt, rec, { gate: a.gate, up: a.up, dOut: dAct, dGate, dUp, count: N * f });
      await matmul(rt, rec, { a: dGate, b: p.gate, c: dHidden, m: N, n: d, k: f, path });
      await matmul(rt, rec, { a: dUp, b: p.up, c: dHidden, m: N, n: d, k: f, accumulate: true, path });
      await matmul(rt, rec, { a: dGate, b: a.h2, c: g.gate, m: f, n: d, k: N, transA: true, path });
      await matmul(rt, rec, { a: dUp, b: a.h2, c: g.up, m: f, n: d, k: N, transA: true, path });
      await rmsNormBackward(rt, rec, {
        x: a.mid,
        gain: p.postNorm,
        rstd: a.rstd2,
        dOut: dHidden,
        dx,
        dGain: g.postNorm,
        partial: scratchView(bk.normPartial, rmsNormScratchSize(N, d)),
        n: N,
        d,
        accumulateDx: true,
      });
      // Attention: mid = x + attn·Woᵀ
      const dAttn = view(bk.dAttn, [N, qw]);
      const dq = view(bk.dq, [N, qw]);
      const dk = view(bk.dk, [N, kw]);
      const dv = view(bk.dv, [N, kw]);
      await matmul(rt, rec, { a: dx, b: p.o, c: dAttn, m: N, n: qw, k: d, path });
      await matmul(rt, rec, { a: dx, b: a.attn, c: g.o, m: d, n: qw, k: N, transA: true, path });
      await attentionBackward(rt, rec, {
        ...shape,
        q: a.q,
        k: a.k,
        v: a.v,
        out: a.attn,
        dOut: dAttn,
        lse: a.lse,
        dq,
        dk,
        dv,
        scratch: view(bk.attnScratch, [N * cfg.nHeads]),
        scale: 1 / Math.sqrt(cfg.headDim),
      });
      await rope(rt, rec, { x: dq, positions, table: this.rope, rows: N, nHeads: cfg.nHeads, headDim: cfg.headDim, inverse: true });
      await rope(rt, rec, { x: dk, positions, table: this.rope, rows: N, nHeads: cfg.nKvHeads, headDim: cfg.headDim, inverse: true });
      // q/k/v biases: the column sums of their gradients.
      for (const [grad, out, c] of [
        [dq, g.qBias, qw],
        [dk, g.kBias, kw],
        [dv, g.vBias, kw],
      ] as const) {
        if (out)
          await columnSum(rt, rec, {
            x: grad,
            out,
            partial: scratchView(bk.colPartial, columnSumScratchSize(N, c)),
            n: N,
            c,
            accumulate: false,
          });
      }
      await matmul(rt, rec, { a: dq, b: p.q, c: dHidden, m: N, n: d, k: qw, path });
      await matmul(rt, rec, { a: dk, b: p.k, c: dHidden, m: N, n: d, k: kw, accumulate: true, path });
      await matmul(rt, rec, { a: dv, b: p.v, c: dHidden, m: N, n: d, k: kw, accumulate: true, path });
      await matmul(rt, rec, { a: dq, b: a.h1, c: g.q, m: qw, n: d, k: N, transA: true, path });
      await matmul(rt, rec, { a: dk, b: a.h1, c: g.k, m: kw, n: d, k: N, transA: true, path });
      await matmul(rt, rec, { a: dv, b: a.h1, c: g.v, m: kw, n: d, k: N, transA: true, path });
      await rmsNormBackward(rt, rec, {
        x: a.x,
        gain: p.inputNorm,
        rstd: a.rstd1,
        dOut: dHidden,
        dx,
        dGain: g.inputNorm,
        partial: scratchView(bk.normPartial, rmsNormScratchSize(N, d)),
        n: N,
        d,
        accumulateDx: true,
      });
    }
    await embeddingBackward(rt, rec, {
      dOut: dx,
      dTable: this.embeddingGrad,
      uniqueIds: view(bk.uniqueIds, [this.uniqueCount]),
      starts: view(bk.starts, [this.uniqueCount + 1]),
      positions: view(bk.order, [N]),
      uniqueCount: this.uniqueCount,
      d,
    });
  }

  /**
   * Global norm, the step decision (overflow skip, clip coefficient, loss scale) and AdamW; with `gate`,
   * a non-zero gate[0] skips the update without touching the optimizer state.
   */
  private async optimizerStep(rec: Recorder, gate?: Tensor): Promise<void> {
    const rt = this.rt;
    const opt = this.optimizer;
    if (!opt) throw new Error('EngineModel: call setOptimizer() before training');
    const gradChunks = this.flatChunks.map((c, k) => this.flatView(this.arenas.grads, c, `grads#${k}`));
    await sumSquares(rt, rec, { x: gradChunks, counts: this.flatChunks.map((c) => c.count), partial: this.sumSqPartial, out: this.sumSq });
    const decision = {
      sumSq: this.sumSq,
      state: this.optimState,
      info: this.stepInfo,
      maxNorm: opt.gradClip,
      dynamic: this.lossScaleOptions.dynamic,
      growthInterval: this.lossScaleOptions.growthInterval,
    };
    if (gate) await gatedStepDecision(rt, rec, { ...decision, gate });
    else await stepDecision(rt, rec, decision);
    for (let k = 0; k < this.flatChunks.length; k++) {
      const c = this.flatChunks[k];
      await adamw(rt, rec, {
        params: this.flatView(this.arenas.params, c, `params#${k}`),
        grads: gradChunks[k],
        m: this.flatView(this.arenas.m, c, `m#${k}`),
        v: this.flatView(this.arenas.v, c, `v#${k}`),
        count: c.count,
        info: this.stepInfo,
        state: this.optimState,
        lr: opt.lr,
        beta1: opt.beta1,
        beta2: opt.beta2,
        eps: opt.eps,
        weightDecay: opt.weightDecay,
      });
    }
  }

  /** The activation bucket for B×T tokens: the current one if it is large enough, else a new one. */
  private async prepare(B: number, T: number): Promise<Bucket> {
    if (T > this.config.maxSeqLen)
      throw new RangeError(`TokenBatch seqLen ${T} exceeds model.maxSeqLen ${this.config.maxSeqLen}; truncate the sequences`);
    const N = B * T;
    const current = this.bucket;
    if (current && current.tokens >= N && current.rows >= B) return current;
    // Grow by powers of two, so a run settles on one bucket after a few minibatches.
    const tokens = Math.max(N, 2 ** Math.ceil(Math.log2(Math.max(N, 64))), current?.tokens ?? 0);
    const rows = Math.max(B, 2 ** Math.ceil(Math.log2(Math.max(B, 1))), current?.rows ?? 0);
    if (current) {
      for (const arena of Object.values(current.arenas)) {
        this.rt.forgetBuffer(arena.id);
        arena.destroy();
      }
      this.bucket = undefined;
    }
    this.bucket = await this.allocateBucket(rows, tokens);
    return this.bucket;
  }

  private async allocateBucket(rows: number, N: number): Promise<Bucket> {
    const cfg = this.config;
    const rt = this.rt;
    const d = cfg.dModel;
    const qw = cfg.nHeads * cfg.headDim;
    const kw = cfg.nKvHeads * cfg.headDim;
    const f = cfg.ffnHidden;
    const V = cfg.vocabSize;
    // Row chunks of the logits start at 256-byte boundaries of every per-row tensor: multiples of 64 rows.
    const fitRows = Math.min(Math.floor(this.logitBudget / V), Math.floor(rt.engine.caps.maxStorageBufferBindingSize / 4 / V));
    const logitRows = fitRows >= N ? N : Math.max(64, Math.floor(fitRows / 64) * 64);
    const fp = (n: number) => Arena.footprint(rt.engine, n, 'f32');
    const perLayer = fp(N * d) * 4 + fp(N) * 2 + fp(N * qw) * 2 + fp(N * kw) * 2 + fp(N * cfg.nHeads) + fp(N * f) * 3;
    const activations = perLayer * cfg.nLayers + fp(N * d) * 2 + fp(N) * 3 + fp(logitRows * V);
    const inputs = fp(N) * 12 + fp(rows) + fp(this.config.vocabSize + 1) * 2;
    const scratch =
      fp(N * d) * 2 +
      fp(N * qw) * 2 +
      fp(N * kw) * 2 +
      fp(N * f) * 3 +
      fp(N) +
      fp(logitRows * V) +
      fp(rmsNormScratchSize(N, d)) +
      fp(columnSumScratchSize(N, Math.max(qw, kw))) +
      fp(N * cfg.nHeads) +
      fp(surrogateScratchSize(rows, Math.ceil(N / rows), Math.min(N, cfg.maxSeqLen))) +
      fp(64);
    const what = `activations for ${N.toLocaleString('en-US')} tokens (bucket of ${rows} rows)`;
    const arenas = await allocateArenas(rt.engine, what, { activations, inputs, scratch });
    const A = arenas.activations;
    const I = arenas.inputs;
    const S = arenas.scratch;
    const layers: LayerActs[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      layers.push({
        x: A.alloc(`x${l}`, [N, d]),
        h1: A.alloc(`h1.${l}`, [N, d]),
        rstd1: A.alloc(`rstd1.${l}`, [N]),
        q: A.alloc(`q${l}`, [N, qw]),
        k: A.alloc(`k${l}`, [N, kw]),
        v: A.alloc(`v${l}`, [N, kw]),
        attn: A.alloc(`attn${l}`, [N, qw]),
        lse: A.alloc(`lse${l}`, [N * cfg.nHeads]),
        mid: A.alloc(`mid${l}`, [N, d]),
        h2: A.alloc(`h2.${l}`, [N, d]),
        rstd2: A.alloc(`rstd2.${l}`, [N]),
        gate: A.alloc(`gate${l}`, [N, f]),
        up: A.alloc(`up${l}`, [N, f]),
        act: A.alloc(`act${l}`, [N, f]),
      });
    }
    return {
      rows,
      tokens: N,
      arenas,
      layers,
      xFinal: A.alloc('x final', [N, d]),
      hFinal: A.alloc('h final', [N, d]),
      rstdFinal: A.alloc('rstd final', [N]),
      logits: A.alloc('logits', [logitRows, V]),
      logitRows,
      lpAt: A.alloc('log-probs', [N]),
      lseLogits: A.alloc('logit lse', [N]),
      ids: I.alloc('ids', [N], 'i32'),
      positions: I.alloc('positions', [N], 'i32'),
      targets: I.alloc('targets', [N], 'i32'),
      old: I.alloc('old log-probs', [N]),
      mask: I.alloc('mask', [N]),
      weights: I.alloc('token weights', [N]),
      advantages: I.alloc('advantages', [rows]),
      importance: I.alloc('importance weights', [N]),
      ref: I.alloc('reference log-probs', [N]),
      turnSlots: I.alloc('turn slots', [N], 'i32'),
      uniqueIds: I.alloc('unique ids', [cfg.vocabSize + 1], 'i32'),
      starts: I.alloc('id starts', [cfg.vocabSize + 1], 'i32'),
      order: I.alloc('id order', [N], 'i32'),
      dx: S.alloc('dx', [N, d]),
      dh: S.alloc('dh', [N, d]),
      dq: S.alloc('dq', [N, qw]),
      dk: S.alloc('dk', [N, kw]),
      dv: S.alloc('dv', [N, kw]),
      dAttn: S.alloc('dattn', [N, qw]),
      dGate: S.alloc('dgate', [N, f]),
      dUp: S.alloc('dup', [N, f]),
      dAct: S.alloc('dact', [N, f]),
      dLp: S.alloc('dlogprobs', [N]),
      dLogits: S.alloc('dlogits', [logitRows, V]),
      normPartial: S.alloc('norm partials', [rmsNormScratchSize(N, d)]),
      colPartial: S.alloc('column partials', [columnSumScratchSize(N, Math.max(qw, kw))]),
      attnScratch: S.alloc('attention scratch', [N * cfg.nHeads]),
      objectiveScratch: S.alloc('objective scratch', [surrogateScratchSize(rows, Math.ceil(N / rows), Math.min(N, cfg.maxSeqLen))]),
      stats: S.alloc('stats', [64]),
    };
  }

  private whole(arena: Arena): Tensor {
    return {
      buffer: arena.buffer,
      bufferId: arena.id,
      offset: 0,
      bytes: arena.capacity,
      shape: [arena.capacity / 4],
      dtype: 'f32',
      size: arena.capacity / 4,
      label: arena.label,
    };
  }

  private flatView(arena: Arena, chunk: { offset: number; count: number }, label: string): Tensor {
    return {
      buffer: arena.buffer,
      bufferId: arena.id,
      offset: chunk.offset * 4,
      bytes: chunk.count * 4,
      shape: [chunk.count],
      dtype: 'f32',
      size: chunk.count,
      label,
    };
  }

  /** The parameter tensors' views at the same offsets in another arena of the same layout. */
  private viewsIn(arena: Arena): Tensor[] {
    return this.params.map((p) => ({ ...p, buffer: arena.buffer, bufferId: arena.id }));
  }

  private async readArena(arena: Arena, layout: Tensor[], prefix: string): Promise<Record<string, NamedTensor>> {
    const views = layout.map((p) => ({ ...p, buffer: arena.buffer, bufferId: arena.id }));
    const rec = this.rt.record('read weights');
    const pending = views.map((t) => rec.readLater(t));
    rec.submit();
    const out: Record<string, NamedTensor> = {};
    for (let k = 0; k < views.length; k++) {
      out[`${prefix}${this.specs[k].name}`] = { dtype: 'F32', shape: [...this.specs[k].shape], data: (await pending[k]) as Float32Array };
    }
    return out;
  }

  private assertTraining(): void {
    this.assertLive();
    if (!this.training) throw new Error('this EngineModel was created with training: false (weights only)');
  }

  /** The weight tensors by role and the RoPE table, for the decoder (models/engine/decoder.ts). */
  get weights(): {
    readonly embedding: Tensor;
    readonly output: Tensor;
    readonly finalNorm: Tensor;
    readonly layers: readonly LayerParams[];
    readonly rope: Tensor;
  } {
    return { embedding: this.embedding, output: this.output, finalNorm: this.finalNorm, layers: this.layerParams, rope: this.rope };
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('this EngineModel has been disposed');
    this.rt.assertLive();
  }

  /** Bytes the model's parameters, gradients and optimizer state take on the GPU. */
  get stateBytes(): string {
    return formatBytes(this.arenas.params.capacity * 4);
  }
}

/** A view of `tensor` with another shape (the binding keeps the tensor's whole range). */
function namedStats(names: readonly string[], values: Float32Array): Record<string, number> {
  return Object.fromEntries(names.map((name, k) => [name, values[k]]));
}

function view(tensor: Tensor, shape: readonly number[]): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > tensor.bytes / (tensor.dtype === 'f16' ? 2 : 4)) throw new RangeError(`view [${shape.join(', ')}] exceeds '${tensor.label}'`);
  return { ...tensor, shape: [...shape], size };
}

/** A scratch tensor viewed at the `size` a kernel asks for (at least one element). */
function scratchView(tensor: Tensor, size: number): Tensor {
  return view(tensor, [Math.max(1, size)]);
}

/** The layer's activations as views of exactly N tokens (bindings keep the bucket's capacity). */
function sizedLayer(a: LayerActs, N: number, cfg: ResolvedPolicyConfig): LayerActs {
  const d = cfg.dModel;
  const qw = cfg.nHeads * cfg.headDim;
  const kw = cfg.nKvHeads * cfg.headDim;
  const f = cfg.ffnHidden;
  return {
    x: view(a.x, [N, d]),
    h1: view(a.h1, [N, d]),
    rstd1: view(a.rstd1, [N]),
    q: view(a.q, [N, qw]),
    k: view(a.k, [N, kw]),
    v: view(a.v, [N, kw]),
    attn: view(a.attn, [N, qw]),
    lse: view(a.lse, [N * cfg.nHeads]),
    mid: view(a.mid, [N, d]),
    h2: view(a.h2, [N, d]),
    rstd2: view(a.rstd2, [N]),
    gate: view(a.gate, [N, f]),
    up: view(a.up, [N, f]),
    act: view(a.act, [N, f]),
  };
}

/** Rows [start, start + count) of a row-major tensor with `width` columns. */
function rowsOf(tensor: Tensor, start: number, count: number, width: number): Tensor {
  if (start === 0) return view(tensor, width === 1 ? [count] : [count, width]);
  const offset = tensor.offset + start * width * 4;
  const align = 256;
  if (offset % align !== 0) {
    throw new RangeError(
      `row chunk at ${start} of '${tensor.label}' is not ${align}-byte aligned; choose a chunk of rows that keeps alignment`,
    );
  }
  return { ...tensor, offset, bytes: count * width * 4, shape: width === 1 ? [count] : [count, width], size: count * width };
}

/** Reference layout (entry t about token t, entry 0 unused) → predicting layout (entry t about token t+1). */
export function toPredicting(values: Float32Array, B: number, T: number): Float32Array {
  const out = new Float32Array(B * T);
  for (let b = 0; b < B; b++) out.set(values.subarray(b * T + 1, (b + 1) * T), b * T);
  return out;
}

function toPredictingInt(values: Int32Array, B: number, T: number, fill: number): Int32Array {
  const out = new Int32Array(B * T).fill(fill);
  for (let b = 0; b < B; b++) out.set(values.subarray(b * T + 1, (b + 1) * T), b * T);
  return out;
}

/** Predicting layout → reference layout (entry (b, 0) = 0). */
export function fromPredicting(values: Float32Array, B: number, T: number): Float32Array {
  const out = new Float32Array(B * T);
  for (let b = 0; b < B; b++) out.set(values.subarray(b * T, (b + 1) * T - 1), b * T + 1);
  return out;
}

function validateTokens(batch: TokenBatch, cfg: ResolvedPolicyConfig): void {
  const { tokens, batchSize, seqLen } = batch;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`TokenBatch needs batchSize ≥ 1 and seqLen ≥ 1, got ${batchSize} × ${seqLen}`);
  }
  if (tokens.length !== batchSize * seqLen)
    throw new RangeError(`TokenBatch has ${tokens.length} tokens, expected batchSize × seqLen = ${batchSize * seqLen}`);
  for (let k = 0; k < tokens.length; k++) {
    if (tokens[k] < 0 || tokens[k] >= cfg.vocabSize) {
      throw new RangeError(
        `token id ${tokens[k]} at row ${Math.floor(k / seqLen)}, position ${k % seqLen} is outside the vocabulary [0, ${cfg.vocabSize})`,
      );
    }
  }
}

function validateWeights(specs: readonly ParameterSpec[], weights: Record<string, NamedTensor>): void {
  const expected = new Set(specs.map((s) => s.name));
  const extra = Object.keys(weights).filter((name) => !expected.has(name));
  if (extra.length > 0)
    throw new GpuError(`unexpected tensor '${extra[0]}' in weights; the checkpoint does not match this model config`, {
      context: { unexpected: extra },
    });
  for (const spec of specs) {
    const tensor = weights[spec.name];
    if (tensor === undefined)
      throw new GpuError(`missing tensor '${spec.name}' in weights; the checkpoint does not match this model config`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (tensor.shape.length !== spec.shape.length || tensor.shape.some((x, k) => x !== spec.shape[k]) || tensor.data.length !== size) {
      throw new GpuError(
        `tensor '${spec.name}' has shape [${tensor.shape.join(', ')}], expected [${spec.shape.join(', ')}]; the checkpoint does not match this model config`,
      );
    }
    if (!(tensor.data instanceof Float32Array))
      throw new GpuError(`tensor '${spec.name}' has dtype ${tensor.dtype}; weights must be floating point`);
  }
}
