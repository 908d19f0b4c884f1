/**
 * The policy: a decoder-only transformer of the Llama / Qwen2 family.
 *
 *   x₀ = E[tokens]                                               E: [V, d], tied with the output layer by default
 *   for each layer:
 *     h = RMSNorm(x) ⊙ g₁;  q, k, v = h·Wq (+bq), h·Wk (+bk), h·Wv (+bv)
 *     q, k = RoPE(q), RoPE(k);  a = softmax(q·kᵀ/√d_head + causal mask)·v   (GQA: kv head = q head / group)
 *     x = x + a·Wo
 *     h = RMSNorm(x) ⊙ g₂;  x = x + (SiLU(h·Wgate) ⊙ (h·Wup))·Wdown
 *   logits = (RMSNorm(x) ⊙ g_final)·Eᵀ                            (or ·W_lm_headᵀ with untied embeddings)
 *
 * Weights are named as in Hugging Face checkpoints (`model.layers.0.self_attn.q_proj.weight`, …) and
 * exported in their layout ([out, in] for linear layers). Internally each linear weight is stored
 * transposed, [in, out], so every projection is a plain `x·W` (the wasm backend's fast path).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { ModelSchema } from '../configs/schema.js';
import { CheckpointError, ConfigError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import './gradients.js';
import { matMul2d } from './matmul.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';

/** The `model` config section (after defaults) plus the tokenizer's vocabulary size. */
export type PolicyConfig = Omit<z.output<typeof ModelSchema>, 'tieEmbeddings'> & { vocabSize: number; tieEmbeddings?: boolean };

/** A PolicyConfig with every optional field filled in and the derived head size. */
export interface ResolvedPolicyConfig {
  readonly vocabSize: number;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads; each serves nHeads / nKvHeads query heads. */
  readonly nKvHeads: number;
  /** dModel / nHeads; even, because RoPE rotates pairs of channels. */
  readonly headDim: number;
  readonly ffnHidden: number;
  readonly maxSeqLen: number;
  readonly ropeTheta: number;
  readonly normEps: number;
  readonly qkvBias: boolean;
  /** The output layer is the token embedding (true) or its own `lm_head.weight` (false). */
  readonly tieEmbeddings: boolean;
  readonly initStd: number;
}

/**
 * Fill in the optional fields (nKvHeads → nHeads; ffnHidden → ⌈8·dModel/3⌉ rounded up to a multiple
 * of 8) and check that the shapes fit together. Throws ConfigError naming the offending field.
 */
export function resolvePolicyConfig(config: PolicyConfig): ResolvedPolicyConfig {
  const { dModel, nHeads } = config;
  const nKvHeads = config.nKvHeads ?? nHeads;
  const ffnHidden = config.ffnHidden ?? Math.ceil(Math.ceil((8 * dModel) / 3) / 8) * 8;
  if (!Number.isInteger(config.vocabSize) || config.vocabSize < 1) {
    throw new ConfigError(`vocabSize must be a positive integer, got ${config.vocabSize}`);
  }
  if (dModel % nHeads !== 0) {
    throw new ConfigError(`model.dModel (${dModel}) must be divisible by model.nHeads (${nHeads})`);
  }
  const headDim = dModel / nHeads;
  if (headDim % 2 !== 0) {
    throw new ConfigError(`model.dModel / model.nHeads = ${headDim} must be even (RoPE rotates channel pairs); change dModel or nHeads`);
  }
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    throw new ConfigError(`model.nKvHeads (${nKvHeads}) must divide model.nHeads (${nHeads})`);
  }
  return Object.freeze({
    vocabSize: config.vocabSize,
    dModel,
    nLayers: config.nLayers,
    nHeads,
    nKvHeads,
    headDim,
    ffnHidden,
    maxSeqLen: config.maxSeqLen,
    ropeTheta: config.ropeTheta,
    normEps: config.normEps,
    qkvBias: config.qkvBias,
    tieEmbeddings: config.tieEmbeddings ?? true,
    initStd: config.initStd,
  });
}

/**
 * Right-padded token rows for scoring: row b is `tokens[b·seqLen .. (b+1)·seqLen)`, real tokens first,
 * then padding. Padding never influences the real positions (attention is causal).
 */
export interface TokenBatch {
  readonly tokens: Int32Array;
  readonly batchSize: number;
  readonly seqLen: number;
}

/** Keys and values every layer has computed so far, one [B, nKvHeads, S, headDim] tensor per layer. */
export interface KvCache {
  readonly keys: tf.Tensor4D[];
  readonly values: tf.Tensor4D[];
}

/** RoPE rotation for the new positions: cos and signed sin, each [B or 1, 1, T, headDim]. */
export interface RopeTables {
  readonly cos: tf.Tensor4D;
  /** sin with the first half of the channels negated, so RoPE(x) = x·cos + swapHalves(x)·signedSin. */
  readonly signedSin: tf.Tensor4D;
}

/** One decoder pass over T new tokens per row, attending to a cache of S earlier positions. */
export interface DecoderInput {
  /** int32 [B, T]. */
  readonly tokens: tf.Tensor2D;
  /** Rotation for each new token's position. */
  readonly rope: RopeTables;
  /**
   * Additive attention mask [B or 1, 1, 1, T, S + T]: 0 where query t may see key s, a large negative
   * number elsewhere. Every query must see at least one key.
   */
  readonly mask: tf.Tensor;
  /** Cache from earlier passes (S = 0 when absent). Not disposed by the pass. */
  readonly past?: KvCache;
}

/** Output of a decoder pass: the final-norm hidden states and the cache extended by the new tokens. */
export interface DecoderOutput {
  /** [B·T, dModel], row b·T + t. */
  readonly hidden: tf.Tensor2D;
  readonly cache: KvCache;
}

/** Additive mask value for hidden keys: exp(−1e9 − max) is exactly 0 in float32. */
export const MASKED_SCORE = -1e9;

/** How a parameter is stored and initialised. */
export type ParameterKind = 'embedding' | 'linear' | 'norm' | 'bias';

export interface ParameterSpec {
  /** Hugging Face name. */
  readonly name: string;
  /** Shape in the exported (Hugging Face) layout. */
  readonly shape: readonly number[];
  readonly kind: ParameterKind;
}

/** A linear weight in storage layout [in, out]. */
type Matrix = tf.Variable<tf.Rank.R2>;

interface LayerWeights {
  readonly inputNorm: tf.Variable;
  readonly q: Matrix;
  readonly k: Matrix;
  readonly v: Matrix;
  readonly qBias?: tf.Variable;
  readonly kBias?: tf.Variable;
  readonly vBias?: tf.Variable;
  readonly o: Matrix;
  readonly postAttentionNorm: tf.Variable;
  readonly gate: Matrix;
  readonly up: Matrix;
  readonly down: Matrix;
}

/** Options of a TransformerPolicy beyond its architecture. */
export interface TransformerPolicyOptions {
  /**
   * Prefix of the tfjs variable names (`<scope>/model.embed_tokens.weight`, …), which optimizers use as
   * keys. Default 'policy'; while another live policy holds a scope, the next free `<scope>_<n>` is used.
   */
  readonly scope?: string;
}

/**
 * Decoder-only transformer policy with deterministic initialisation: the same config and seed give the
 * same weights on every backend. Owns its variables; call `dispose()` when done.
 */
export class TransformerPolicy {
  /** The resolved architecture. */
  readonly config: ResolvedPolicyConfig;
  /** Trainable variables, in `parameterNames` order (linear weights stored [in, out]). */
  readonly variables: tf.Variable[];
  /** Hugging Face name of each variable, aligned with `variables`. */
  readonly parameterNames: readonly string[];
  /** Total number of scalar parameters. */
  readonly paramCount: number;

  /** Prefix of this policy's tfjs variable names. */
  readonly variableScope: string;

  private readonly specs: readonly ParameterSpec[];
  private readonly embedding: Matrix;
  /** The output layer's matrix [V, dModel]: the embedding itself when tied, else `lm_head.weight`. */
  private readonly outputEmbedding: Matrix;
  private readonly layers: readonly LayerWeights[];
  private readonly finalNorm: tf.Variable;
  /** θ^(−2i/headDim) for i < headDim/2, in float64. */
  private readonly inverseFrequencies: Float64Array;
  private disposed = false;

  /** `config` may be raw or already resolved; `seed` fixes the initial weights. */
  constructor(config: PolicyConfig | ResolvedPolicyConfig, seed: number, options: TransformerPolicyOptions = {}) {
    this.config = resolvePolicyConfig(config);
    this.specs = parameterSpecs(this.config);
    const scope = freeScope(options.scope ?? 'policy', this.specs[0].name);
    this.variableScope = scope;
    const rng = new Rng(seed);
    const byName = new Map<string, tf.Variable>();
    this.variables = this.specs.map((spec) => {
      const values = initialValues(spec, this.config.initStd, rng);
      const variable = tf.tidy(() => tf.variable(toStorageLayout(spec, values), true, `${scope}/${spec.name}`));
      byName.set(spec.name, variable);
      return variable;
    });
    this.parameterNames = this.specs.map((spec) => spec.name);
    this.paramCount = this.specs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1), 0);

    const get = (name: string): tf.Variable => byName.get(name) as tf.Variable;
    const matrix = (name: string): Matrix => byName.get(name) as Matrix;
    this.embedding = matrix('model.embed_tokens.weight');
    this.outputEmbedding = this.config.tieEmbeddings ? this.embedding : matrix('lm_head.weight');
    this.finalNorm = get('model.norm.weight');
    this.layers = Array.from({ length: this.config.nLayers }, (_, i) => {
      const p = `model.layers.${i}`;
      return {
        inputNorm: get(`${p}.input_layernorm.weight`),
        q: matrix(`${p}.self_attn.q_proj.weight`),
        k: matrix(`${p}.self_attn.k_proj.weight`),
        v: matrix(`${p}.self_attn.v_proj.weight`),
        qBias: byName.get(`${p}.self_attn.q_proj.bias`),
        kBias: byName.get(`${p}.self_attn.k_proj.bias`),
        vBias: byName.get(`${p}.self_attn.v_proj.bias`),
        o: matrix(`${p}.self_attn.o_proj.weight`),
        postAttentionNorm: get(`${p}.post_attention_layernorm.weight`),
        gate: matrix(`${p}.mlp.gate_proj.weight`),
        up: matrix(`${p}.mlp.up_proj.weight`),
        down: matrix(`${p}.mlp.down_proj.weight`),
      };
    });

    const half = this.config.headDim / 2;
    this.inverseFrequencies = new Float64Array(half);
    for (let i = 0; i < half; i++) this.inverseFrequencies[i] = this.config.ropeTheta ** ((-2 * i) / this.config.headDim);
  }

  /**
   * Log-probability of every token given the tokens before it, [B, T]: entry (b, t ≥ 1) is
   * log softmax(logits(b, t−1) / temperature)[tokens(b, t)]; entry (b, 0) is 0. Entries at padding
   * positions are finite but meaningless (mask them). Differentiable w.r.t. `variables`.
   */
  logProbs(batch: TokenBatch, temperature = 1): tf.Tensor2D {
    return this.scoreTokens(batch, temperature, false).logProbs;
  }

  /**
   * `logProbs` plus the entropy (nats) of each next-token distribution softmax(logits(b, t−1)/temperature),
   * also [B, T] with entry 0 = 0. For diagnostics; differentiable like `logProbs`.
   */
  logProbsWithEntropy(batch: TokenBatch, temperature = 1): { logProbs: tf.Tensor2D; entropy: tf.Tensor2D } {
    const scored = this.scoreTokens(batch, temperature, true);
    return { logProbs: scored.logProbs, entropy: scored.entropy as tf.Tensor2D };
  }

  private scoreTokens(batch: TokenBatch, temperature: number, withEntropy: boolean): { logProbs: tf.Tensor2D; entropy?: tf.Tensor2D } {
    this.assertLive();
    validateBatch(batch, this.config);
    checkTemperature(temperature);
    const { batchSize: B, seqLen: T } = batch;
    const V = this.config.vocabSize;
    if (T === 1) {
      // Nothing is predicted: the first token has no context.
      return { logProbs: tf.zeros([B, 1]), entropy: withEntropy ? tf.zeros([B, 1]) : undefined };
    }
    return tf.tidy(() => {
      const tokens = tf.tensor2d(batch.tokens, [B, T], 'int32');
      const rope = this.ropeTables(sequentialPositions(1, T), 1, T);
      const { hidden } = this.decode({ tokens, rope, mask: causalMask(T) }, true);
      // Position t predicts token t+1: drop the last position's prediction and the first token.
      const predicting = tf.reshape(tf.slice(tf.reshape(hidden, [B, T, -1]), [0, 0, 0], [B, T - 1, -1]), [B * (T - 1), -1]);
      const logProbsAll = nextTokenLogProbs(this.logits(predicting as tf.Tensor2D), temperature);
      const targets = tf.reshape(tf.slice(tokens, [0, 1], [B, T - 1]), [-1]);
      const picked = tf.sum(tf.mul(logProbsAll, tf.oneHot(targets, V)), 1);
      const leadingZero = tf.zeros([B, 1]);
      const logProbs = tf.concat([leadingZero, tf.reshape(picked, [B, T - 1])], 1) as tf.Tensor2D;
      if (!withEntropy) return { logProbs };
      const entropyPerRow = tf.neg(tf.sum(tf.mul(tf.exp(logProbsAll), logProbsAll), 1));
      const entropy = tf.concat([leadingZero, tf.reshape(entropyPerRow, [B, T - 1])], 1) as tf.Tensor2D;
      return { logProbs, entropy };
    });
  }

  /**
   * Run the decoder over new tokens (see DecoderInput). `differentiable` picks an embedding lookup that
   * can backpropagate on every backend; the sampler passes false. The caller owns both outputs.
   */
  decode(input: DecoderInput, differentiable = false): DecoderOutput {
    this.assertLive();
    const [B, T] = input.tokens.shape;
    const cfg = this.config;
    return tf.tidy(() => {
      let x = this.embed(tf.reshape(input.tokens, [-1]) as tf.Tensor1D, differentiable);
      const keys: tf.Tensor4D[] = [];
      const values: tf.Tensor4D[] = [];
      for (let i = 0; i < this.layers.length; i++) {
        const layer = this.layers[i];
        const h = rmsNorm(x, layer.inputNorm, cfg.normEps);
        const q = this.projectHeads(h, layer.q, layer.qBias, B, T, cfg.nHeads, input.rope);
        let k = this.projectHeads(h, layer.k, layer.kBias, B, T, cfg.nKvHeads, input.rope);
        let v = this.projectHeads(h, layer.v, layer.vBias, B, T, cfg.nKvHeads);
        if (input.past) {
          k = tf.concat([input.past.keys[i], k], 2);
          v = tf.concat([input.past.values[i], v], 2);
        }
        keys.push(k);
        values.push(v);
        const attended = this.attention(q, k, v, input.mask, B, T);
        x = tf.add(x, matMul2d(attended, layer.o));
        const m = rmsNorm(x, layer.postAttentionNorm, cfg.normEps);
        const gate = matMul2d(m, layer.gate);
        const up = matMul2d(m, layer.up);
        const activated = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
        x = tf.add(x, matMul2d(activated, layer.down));
      }
      const hidden = rmsNorm(x, this.finalNorm, cfg.normEps);
      return { hidden, cache: { keys, values } };
    });
  }

  /** Output-layer logits for final-norm hidden states: [N, dModel] → [N, vocabSize] (h·Eᵀ, or h·W_lm_headᵀ untied). */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    this.assertLive();
    return tf.tidy(() => matMul2d(hidden, tf.transpose(this.outputEmbedding) as tf.Tensor2D));
  }

  /**
   * RoPE tables for `positions` laid out as [rows, cols] (row-major), shaped [rows, 1, cols, headDim].
   * Angles are computed in float64 and rounded once.
   */
  ropeTables(positions: Int32Array, rows: number, cols: number): RopeTables {
    const half = this.config.headDim / 2;
    const dim = this.config.headDim;
    const cos = new Float32Array(rows * cols * dim);
    const signedSin = new Float32Array(rows * cols * dim);
    for (let p = 0; p < rows * cols; p++) {
      const base = p * dim;
      for (let i = 0; i < half; i++) {
        const angle = positions[p] * this.inverseFrequencies[i];
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        cos[base + i] = c;
        cos[base + half + i] = c;
        signedSin[base + i] = -s;
        signedSin[base + half + i] = s;
      }
    }
    return {
      cos: tf.tensor4d(cos, [rows, 1, cols, dim]),
      signedSin: tf.tensor4d(signedSin, [rows, 1, cols, dim]),
    };
  }

  /** Weights in Hugging Face layout, float32. Synchronous: use getWeightsAsync on webgpu. */
  getWeights(): Record<string, NamedTensor> {
    this.assertLive();
    if (tf.getBackend() === 'webgpu') {
      throw new Error('getWeights() reads tensors synchronously, which the webgpu backend cannot do in Node; use getWeightsAsync()');
    }
    const out: Record<string, NamedTensor> = {};
    this.specs.forEach((spec, i) => {
      const exported = this.exportLayout(spec, this.variables[i]);
      out[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: exported.dataSync() as Float32Array };
      if (exported !== this.variables[i]) exported.dispose();
    });
    return out;
  }

  /** Weights in Hugging Face layout, float32, read without blocking (works on every backend). */
  async getWeightsAsync(): Promise<Record<string, NamedTensor>> {
    this.assertLive();
    const out: Record<string, NamedTensor> = {};
    for (let i = 0; i < this.specs.length; i++) {
      const spec = this.specs[i];
      const exported = this.exportLayout(spec, this.variables[i]);
      out[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: (await exported.data()) as Float32Array };
      if (exported !== this.variables[i]) exported.dispose();
    }
    return out;
  }

  /**
   * Replace every weight. `weights` must hold exactly this architecture's tensors (Hugging Face names
   * and layout; F32, F16 or BF16). Validates everything before assigning anything; a missing, extra,
   * mis-shaped or integer tensor throws CheckpointError naming it.
   */
  setWeights(weights: Record<string, NamedTensor>): void {
    this.assertLive();
    const expected = new Set(this.parameterNames);
    const extra = Object.keys(weights).filter((name) => !expected.has(name));
    if (extra.length > 0) {
      throw new CheckpointError(
        `unexpected tensor '${extra[0]}' in weights${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}; the checkpoint does not match this model config`,
        {
          context: { unexpected: extra },
        },
      );
    }
    for (const spec of this.specs) {
      const tensor = weights[spec.name];
      if (tensor === undefined) {
        throw new CheckpointError(`missing tensor '${spec.name}' in weights; the checkpoint does not match this model config`, {
          context: { tensor: spec.name },
        });
      }
      if (!sameShape(tensor.shape, spec.shape)) {
        throw new CheckpointError(
          `tensor '${spec.name}' has shape [${tensor.shape.join(', ')}], expected [${spec.shape.join(', ')}]; the checkpoint does not match this model config`,
          {
            context: { tensor: spec.name, shape: tensor.shape, expectedShape: spec.shape },
          },
        );
      }
      if (!(tensor.data instanceof Float32Array) || tensor.dtype === 'I32') {
        throw new CheckpointError(`tensor '${spec.name}' has dtype ${tensor.dtype}; weights must be floating point (F32, F16 or BF16)`, {
          context: { tensor: spec.name, dtype: tensor.dtype },
        });
      }
      if (tensor.data.length !== spec.shape.reduce((a, b) => a * b, 1)) {
        throw new CheckpointError(`tensor '${spec.name}' has ${tensor.data.length} values for shape [${spec.shape.join(', ')}]`, {
          context: { tensor: spec.name },
        });
      }
    }
    this.specs.forEach((spec, i) => {
      tf.tidy(() => this.variables[i].assign(toStorageLayout(spec, weights[spec.name].data as Float32Array)));
    });
  }

  /** The weights as a safetensors blob (Hugging Face names and layout). Synchronous; see getWeights. */
  toSafetensors(): Uint8Array {
    return encodeSafetensors(this.getWeights(), this.safetensorsMetadata());
  }

  /** The weights as a safetensors blob, read without blocking (works on every backend). */
  async toSafetensorsAsync(): Promise<Uint8Array> {
    return encodeSafetensors(await this.getWeightsAsync(), this.safetensorsMetadata());
  }

  /** Load weights from a safetensors blob; throws CheckpointError if it is malformed or does not match. */
  loadSafetensors(bytes: Uint8Array): void {
    this.setWeights(decodeSafetensors(bytes).tensors);
  }

  /** Free the variables. The policy cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const variable of this.variables) variable.dispose();
  }

  private safetensorsMetadata(): Record<string, string> {
    // `format: pt` is what Hugging Face loaders look for; the config documents the architecture.
    return { format: 'pt', 'horizon.model_config': JSON.stringify(this.config) };
  }

  private exportLayout(spec: ParameterSpec, variable: tf.Variable): tf.Tensor {
    return spec.kind === 'linear' ? tf.transpose(variable) : variable;
  }

  /** Token embeddings [N] → [N, dModel]. */
  private embed(ids: tf.Tensor1D, differentiable: boolean): tf.Tensor2D {
    // tf.gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks; a one-hot product
    // has the same value and gradient and uses the fast matmul. (The one-hot is built as int32 and
    // cast: wasm's OneHot ignores a float32 dtype request and returns int bits labelled float32.)
    if (differentiable && tf.getKernel('UnsortedSegmentSum', tf.getBackend()) === undefined) {
      const oneHot = tf.cast(tf.oneHot(ids, this.config.vocabSize), 'float32') as tf.Tensor2D;
      return matMul2d(oneHot, this.embedding);
    }
    return tf.gather(this.embedding, ids) as tf.Tensor2D;
  }

  /** h [B·T, d] → heads [B, heads, T, headDim], optionally rotated. */
  private projectHeads(
    h: tf.Tensor2D,
    weight: Matrix,
    bias: tf.Variable | undefined,
    B: number,
    T: number,
    heads: number,
    rope?: RopeTables,
  ): tf.Tensor4D {
    let projected: tf.Tensor2D = matMul2d(h, weight);
    if (bias) projected = tf.add(projected, bias);
    const split = tf.transpose(tf.reshape(projected, [B, T, heads, this.config.headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
    return rope ? applyRope(split, rope) : split;
  }

  /**
   * Grouped-query attention. q: [B, nHeads, T, hd]; k, v: [B, nKvHeads, S, hd]; mask broadcastable to
   * [B, nKvHeads, group, T, S]. Query head h reads kv head ⌊h / group⌋, so q is viewed as
   * [B·nKvHeads, group·T, hd] and k, v are never repeated. Returns [B·T, nHeads·hd].
   */
  private attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor, B: number, T: number): tf.Tensor2D {
    const { nHeads, nKvHeads, headDim } = this.config;
    const group = nHeads / nKvHeads;
    const S = k.shape[2];
    // Batched products: at these sizes per-slice 2-D products lose more to per-op cost than they gain.
    const scaledQ = tf.mul(tf.reshape(q, [B * nKvHeads, group * T, headDim]), 1 / Math.sqrt(headDim)) as tf.Tensor3D;
    const scores = tf.matMul(scaledQ, tf.reshape(k, [B * nKvHeads, S, headDim]) as tf.Tensor3D, false, true);
    const masked = tf.add(tf.reshape(scores, [B, nKvHeads, group, T, S]), mask);
    const weights = tf.reshape(tf.softmax(masked), [B * nKvHeads, group * T, S]) as tf.Tensor3D;
    const mixed = tf.matMul(weights, tf.reshape(v, [B * nKvHeads, S, headDim]) as tf.Tensor3D);
    return tf.reshape(tf.transpose(tf.reshape(mixed, [B, nHeads, T, headDim]), [0, 2, 1, 3]), [B * T, nHeads * headDim]) as tf.Tensor2D;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('this TransformerPolicy has been disposed');
  }
}

/** log softmax(logits / temperature) over the vocabulary: [N, V] → [N, V]. Shared with the sampler. */
export function nextTokenLogProbs(logits: tf.Tensor2D, temperature: number): tf.Tensor2D {
  return tf.logSoftmax(temperature === 1 ? logits : tf.mul(logits, 1 / temperature)) as tf.Tensor2D;
}

/** Throws RangeError unless temperature is a finite positive number. */
export function checkTemperature(temperature: number): void {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be a finite number > 0, got ${temperature}`);
  }
}

/** Positions 0..cols−1 for each of `rows` rows, row-major [rows·cols]. */
export function sequentialPositions(rows: number, cols: number): Int32Array {
  const positions = new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) positions[r * cols + c] = c;
  return positions;
}

/** Causal additive mask [1, 1, 1, T, T]: query t sees keys 0..t. Built on the device. */
function causalMask(T: number): tf.Tensor {
  return tf.tidy(() => {
    const lower = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
    return tf.reshape(tf.mul(tf.sub(1, lower), MASKED_SCORE), [1, 1, 1, T, T]);
  });
}

/** RMSNorm over the last axis: x / √(mean(x²) + ε) ⊙ g. */
function rmsNorm(x: tf.Tensor2D, gain: tf.Variable, eps: number): tf.Tensor2D {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), gain);
}

/** RoPE in the Hugging Face "rotate half" convention: x·cos + [x₂, x₁]·[−sin, sin]. */
function applyRope(x: tf.Tensor4D, rope: RopeTables): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [first, second] = tf.split(x, [half, half], 3);
  const swapped = tf.concat([second, first], 3);
  return tf.add(tf.mul(x, rope.cos), tf.mul(swapped, rope.signedSin));
}

/** The parameter list in a fixed order (which also fixes the initialisation stream). */
export function parameterSpecs(cfg: ResolvedPolicyConfig): ParameterSpec[] {
  const { dModel, nHeads, nKvHeads, headDim, ffnHidden, vocabSize } = cfg;
  const specs: ParameterSpec[] = [{ name: 'model.embed_tokens.weight', shape: [vocabSize, dModel], kind: 'embedding' }];
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [dModel], kind: 'norm' });
    specs.push({ name: `${p}.self_attn.q_proj.weight`, shape: [nHeads * headDim, dModel], kind: 'linear' });
    specs.push({ name: `${p}.self_attn.k_proj.weight`, shape: [nKvHeads * headDim, dModel], kind: 'linear' });
    specs.push({ name: `${p}.self_attn.v_proj.weight`, shape: [nKvHeads * headDim, dModel], kind: 'linear' });
    if (cfg.qkvBias) {
      specs.push({ name: `${p}.self_attn.q_proj.bias`, shape: [nHeads * headDim], kind: 'bias' });
      specs.push({ name: `${p}.self_attn.k_proj.bias`, shape: [nKvHeads * headDim], kind: 'bias' });
      specs.push({ name: `${p}.self_attn.v_proj.bias`, shape: [nKvHeads * headDim], kind: 'bias' });
    }
    specs.push({ name: `${p}.self_attn.o_proj.weight`, shape: [dModel, nHeads * headDim], kind: 'linear' });
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [dModel], kind: 'norm' });
    specs.push({ name: `${p}.mlp.gate_proj.weight`, shape: [ffnHidden, dModel], kind: 'linear' });
    specs.push({ name: `${p}.mlp.up_proj.weight`, shape: [ffnHidden, dModel], kind: 'linear' });
    specs.push({ name: `${p}.mlp.down_proj.weight`, shape: [dModel, ffnHidden], kind: 'linear' });
  }
  specs.push({ name: 'model.norm.weight', shape: [dModel], kind: 'norm' });
  if (!cfg.tieEmbeddings) specs.push({ name: 'lm_head.weight', shape: [vocabSize, dModel], kind: 'embedding' });
  return specs;
}

/** Initial values in exported layout: N(0, initStd²) for matrices, 1 for norm gains, 0 for biases. */
export function initialValues(spec: ParameterSpec, initStd: number, rng: Rng): Float32Array {
  const values = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
  if (spec.kind === 'norm') values.fill(1);
  else if (spec.kind === 'embedding' || spec.kind === 'linear') for (let i = 0; i < values.length; i++) values[i] = initStd * rng.normal();
  return values;
}

/** Exported-layout values → a tensor in storage layout ([out, in] → [in, out] for linear weights). */
function toStorageLayout(spec: ParameterSpec, values: Float32Array): tf.Tensor {
  const tensor = tf.tensor(values, [...spec.shape], 'float32');
  return spec.kind === 'linear' ? tf.transpose(tensor) : tensor;
}

function validateBatch(batch: TokenBatch, cfg: ResolvedPolicyConfig): void {
  const { tokens, batchSize, seqLen } = batch;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`TokenBatch needs batchSize ≥ 1 and seqLen ≥ 1, got ${batchSize} × ${seqLen}`);
  }
  if (tokens.length !== batchSize * seqLen) {
    throw new RangeError(`TokenBatch has ${tokens.length} tokens, expected batchSize × seqLen = ${batchSize * seqLen}`);
  }
  if (seqLen > cfg.maxSeqLen) {
    throw new RangeError(`TokenBatch seqLen ${seqLen} exceeds model.maxSeqLen ${cfg.maxSeqLen}; truncate the sequences`);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] < 0 || tokens[i] >= cfg.vocabSize) {
      throw new RangeError(
        `token id ${tokens[i]} at row ${Math.floor(i / seqLen)}, position ${i % seqLen} is outside the vocabulary [0, ${cfg.vocabSize})`,
      );
    }
  }
}

/** `base`, or `base_1`, `base_2`, … — the first scope whose variables are not registered in tfjs. */
function freeScope(base: string, probeName: string): string {
  const registered = tf.engine().registeredVariables;
  if (registered[`${base}/${probeName}`] === undefined) return base;
  for (let n = 1; ; n++) if (registered[`${base}_${n}/${probeName}`] === undefined) return `${base}_${n}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}
