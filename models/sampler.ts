/**
 * Batched sampling with a key/value cache.
 *
 * All requests run as one batch. Contexts of different lengths are left-padded to the longest one L:
 * row b's real tokens occupy cache slots [offset_b, L) with offset_b = L − len_b, its RoPE positions
 * count from 0 at offset_b, and an attention mask hides slots < offset_b from every query. Each row
 * therefore computes exactly what it would alone, so the sampler's log-probs match
 * `TransformerPolicy.logProbs` on the finished sequence (up to float rounding).
 *
 *   prefill:  run the padded contexts [B, L] (in column chunks, to bound the attention matrix) → cache
 *   decode:   sample one token per live row from softmax(logits / temperature) with the row's Rng,
 *             feed the tokens [B_live, 1] through the decoder with the cache, repeat
 * Rows that stop (stop token or maxNewTokens) leave the batch; the cache is compacted to the rest.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../core/rng.js';
import { trimGpuBufferPool } from './backend.js';
import { MASKED_SCORE, checkTemperature, nextTokenLogProbs, type KvCache, type TransformerPolicy } from './transformer.js';

/** One sequence to continue. */
export interface GenerationRequest {
  /** Token ids so far (at least one, e.g. BOS). */
  readonly context: readonly number[];
  /** Most tokens to generate; context.length + maxNewTokens must not exceed the model's maxSeqLen. */
  readonly maxNewTokens: number;
  /** This row's random stream; one `next()` per sampled token. */
  readonly rng: Rng;
}

/** The continuation of one request. */
export interface GenerationResult {
  /** Sampled ids, in order; ends with the stop token when finishReason is 'stop'. */
  readonly tokens: number[];
  /** log softmax(logits / temperature)[token] for each sampled token (natural log). */
  readonly logProbs: number[];
  /** 'stop': a stop token was sampled; 'length': maxNewTokens tokens were generated. */
  readonly finishReason: 'stop' | 'length';
}

/** How to sample. */
export interface GenerationOptions {
  /** Softmax temperature, > 0 (1 = the policy's own distribution). */
  readonly temperature: number;
  /** Ids that end a row (e.g. EOT); the stop token is returned with its log-prob. */
  readonly stopTokens: readonly number[];
  /**
   * Upper bound on attention-score elements (rows × heads × query columns × keys) per prefill chunk;
   * long contexts are prefilled in as many column chunks as needed. Default 2²⁴ (64 MB of float32).
   */
  readonly prefillScoreBudget?: number;
}

const DEFAULT_PREFILL_SCORE_BUDGET = 1 << 24;

/**
 * Something that continues token sequences under this contract other than the tfjs policy — the GPU
 * engine's decoder (models/engine/decoder.ts).
 */
export interface TokenGenerator {
  readonly config: { readonly maxSeqLen: number; readonly vocabSize: number };
  generate(requests: readonly GenerationRequest[], options: GenerationOptions): Promise<GenerationResult[]>;
}

/** A policy episodes can be generated with: the tfjs TransformerPolicy or a TokenGenerator. */
export type GenerationPolicy = TransformerPolicy | TokenGenerator;

/** `generate` on whichever kind of policy this is. */
export function generateWith(
  policy: GenerationPolicy,
  requests: readonly GenerationRequest[],
  options: GenerationOptions,
): Promise<GenerationResult[]> {
  return isTokenGenerator(policy) ? policy.generate(requests, options) : generate(policy, requests, options);
}

function isTokenGenerator(policy: GenerationPolicy): policy is TokenGenerator {
  return typeof (policy as Partial<TokenGenerator>).generate === 'function';
}

/**
 * Sample continuations for all `requests` as one batch. Async because every decode step reads the
 * next-token distribution back from the device (`await data()`, which the webgpu backend requires).
 * Throws RangeError for an empty context, an id outside the vocabulary, a bad maxNewTokens or
 * temperature, or a context longer than maxSeqLen − maxNewTokens (the caller must cap the context).
 */
export async function generate(
  policy: TransformerPolicy,
  requests: readonly GenerationRequest[],
  options: GenerationOptions,
): Promise<GenerationResult[]> {
  checkTemperature(options.temperature);
  validateRequests(policy, requests);
  const stopTokens = new Set(options.stopTokens);
  const results = requests.map(() => ({ tokens: [] as number[], logProbs: [] as number[], finishReason: 'length' as 'stop' | 'length' }));

  /** Request index of each batch row, in batch order. */
  let rows = requests.flatMap((request, i) => (request.maxNewTokens > 0 ? [i] : []));
  if (rows.length === 0) return results;

  const contextLength = Math.max(...rows.map((i) => requests[i].context.length));
  /** Cache slots before a row's first real token. */
  let offsets = rows.map((i) => contextLength - requests[i].context.length);
  let cache: KvCache | undefined;
  try {
    const prefill = prefillContexts(
      policy,
      rows.map((i) => requests[i].context),
      offsets,
      contextLength,
      options,
    );
    cache = prefill.cache;
    let nextLogProbs = prefill.logProbs;

    for (;;) {
      const distributions = (await nextLogProbs.data()) as Float32Array;
      nextLogProbs.dispose();
      // The KV cache grows by one position per step: every step allocates buffers of new sizes.
      trimGpuBufferPool();
      const vocab = policy.config.vocabSize;
      const continuing: number[] = [];
      const fedTokens: number[] = [];
      rows.forEach((requestIndex, row) => {
        const request = requests[requestIndex];
        const result = results[requestIndex];
        const rowLogProbs = distributions.subarray(row * vocab, (row + 1) * vocab);
        const token = sampleToken(rowLogProbs, request.rng);
        result.tokens.push(token);
        result.logProbs.push(rowLogProbs[token]);
        if (stopTokens.has(token)) result.finishReason = 'stop';
        else if (result.tokens.length < request.maxNewTokens) {
          continuing.push(row);
          fedTokens.push(token);
        }
      });
      if (continuing.length === 0) break;

      if (continuing.length < rows.length) {
        const compacted = compactCache(cache, continuing, offsets);
        disposeCache(cache);
        cache = compacted.cache;
        offsets = compacted.offsets;
        rows = continuing.map((row) => rows[row]);
      }
      // Position of the token being fed = its index in the row's real sequence.
      const positions = Int32Array.from(rows, (i) => requests[i].context.length + results[i].tokens.length - 1);
      const step = decodeStep(policy, cache, fedTokens, positions, offsets, options.temperature);
      disposeCache(cache);
      cache = step.cache;
      nextLogProbs = step.logProbs;
    }
  } finally {
    if (cache) disposeCache(cache);
  }
  return results;
}

/** Inverse-CDF draw from exp(logProbs) with one uniform from `rng`. */
function sampleToken(logProbs: Float32Array, rng: Rng): number {
  const u = rng.next();
  let cumulative = 0;
  let lastPossible = -1;
  for (let id = 0; id < logProbs.length; id++) {
    const p = Math.exp(logProbs[id]);
    if (p > 0) lastPossible = id;
    cumulative += p;
    if (u < cumulative) return id;
  }
  // The probabilities summed to slightly less than u through rounding: take the last possible id.
  if (lastPossible < 0) {
    throw new RangeError(
      `the policy's next-token distribution has no finite probability (log-probs ${Array.from(logProbs.slice(0, 3)).join(', ')}, …): its weights are not finite — the update that produced them diverged`,
    );
  }
  return lastPossible;
}

/**
 * Run the left-padded contexts through the decoder in column chunks, building the cache, and return
 * the next-token log-probs at the last column, [B, V].
 */
function prefillContexts(
  policy: TransformerPolicy,
  contexts: readonly (readonly number[])[],
  offsets: readonly number[],
  length: number,
  options: GenerationOptions,
): { cache: KvCache; logProbs: tf.Tensor2D } {
  const B = contexts.length;
  const padded = new Int32Array(B * length);
  contexts.forEach((context, b) => padded.set(context, b * length + offsets[b]));
  const budget = options.prefillScoreBudget ?? DEFAULT_PREFILL_SCORE_BUDGET;
  const chunk = Math.max(1, Math.min(length, Math.floor(budget / (B * policy.config.nHeads * length))));

  let cache: KvCache | undefined;
  try {
    for (let start = 0; start < length; start += chunk) {
      const end = Math.min(length, start + chunk);
      const width = end - start;
      const tokens = new Int32Array(B * width);
      const positions = new Int32Array(B * width);
      // mask[b, i, j]: query column start+i sees key slot j iff offset_b ≤ j ≤ start+i.
      const mask = new Float32Array(B * width * end).fill(MASKED_SCORE);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < width; i++) {
          const column = start + i;
          tokens[b * width + i] = padded[b * length + column];
          positions[b * width + i] = Math.max(0, column - offsets[b]);
          mask.fill(0, (b * width + i) * end + offsets[b], (b * width + i) * end + column + 1);
        }
      }
      const isLast = end === length;
      const past = cache;
      const out = tf.tidy(() => {
        const rope = policy.ropeTables(positions, B, width);
        const { hidden, cache: extended } = policy.decode({
          tokens: tf.tensor2d(tokens, [B, width], 'int32'),
          rope,
          mask: tf.tensor(mask, [B, 1, 1, width, end]),
          past,
        });
        if (!isLast) return { cache: extended as unknown as tf.TensorContainer };
        const lastColumn = tf.reshape(tf.slice(tf.reshape(hidden, [B, width, -1]), [0, width - 1, 0], [B, 1, -1]), [B, -1]);
        return {
          cache: extended as unknown as tf.TensorContainer,
          logProbs: nextTokenLogProbs(policy.logits(lastColumn as tf.Tensor2D), options.temperature),
        };
      }) as unknown as { cache: KvCache; logProbs?: tf.Tensor2D };
      if (past) disposeCache(past);
      cache = out.cache;
      if (out.logProbs) return { cache, logProbs: out.logProbs };
    }
  } catch (err) {
    if (cache) disposeCache(cache);
    throw err;
  }
  throw new Error('prefill produced no columns');
}

/** Feed one token per row at the end of the cache; returns the extended cache and next log-probs [B, V]. */
function decodeStep(
  policy: TransformerPolicy,
  cache: KvCache,
  tokens: readonly number[],
  positions: Int32Array,
  offsets: readonly number[],
  temperature: number,
): { cache: KvCache; logProbs: tf.Tensor2D } {
  const B = tokens.length;
  const keyCount = cache.keys[0].shape[2] + 1;
  const mask = new Float32Array(B * keyCount);
  for (let b = 0; b < B; b++) mask.fill(MASKED_SCORE, b * keyCount, b * keyCount + offsets[b]);
  return tf.tidy(() => {
    const { hidden, cache: extended } = policy.decode({
      tokens: tf.tensor2d(Int32Array.from(tokens), [B, 1], 'int32'),
      rope: policy.ropeTables(positions, B, 1),
      mask: tf.tensor(mask, [B, 1, 1, 1, keyCount]),
      past: cache,
    });
    return {
      cache: extended as unknown as tf.TensorContainer,
      logProbs: nextTokenLogProbs(policy.logits(hidden), temperature),
    };
  }) as unknown as { cache: KvCache; logProbs: tf.Tensor2D };
}

/**
 * Keep only the cache rows in `keep` (batch indices) and drop leading slots that every kept row
 * masks out. Returns a new cache (the input is left to the caller) and the kept rows' new offsets.
 */
function compactCache(cache: KvCache, keep: readonly number[], offsets: readonly number[]): { cache: KvCache; offsets: number[] } {
  const keptOffsets = keep.map((row) => offsets[row]);
  const trim = Math.min(...keptOffsets);
  const compacted = tf.tidy(() => {
    const indices = tf.tensor1d(Int32Array.from(keep), 'int32');
    const select = (t: tf.Tensor4D): tf.Tensor4D => {
      const rows = tf.gather(t, indices, 0) as tf.Tensor4D;
      return trim > 0 ? tf.slice(rows, [0, 0, trim, 0], [-1, -1, -1, -1]) : rows;
    };
    return { keys: cache.keys.map(select), values: cache.values.map(select) };
  }) as unknown as KvCache;
  return { cache: compacted, offsets: keptOffsets.map((offset) => offset - trim) };
}

function disposeCache(cache: KvCache): void {
  tf.dispose([...cache.keys, ...cache.values]);
}

function validateRequests(policy: TransformerPolicy, requests: readonly GenerationRequest[]): void {
  const { maxSeqLen, vocabSize } = policy.config;
  requests.forEach((request, i) => {
    const { context, maxNewTokens } = request;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new RangeError(`request ${i}: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
    }
    if (context.length === 0) {
      throw new RangeError(`request ${i}: context is empty; start it with at least one token (e.g. BOS)`);
    }
    if (context.length > maxSeqLen - maxNewTokens) {
      throw new RangeError(
        `request ${i}: context of ${context.length} tokens + maxNewTokens ${maxNewTokens} exceeds the model's maxSeqLen ${maxSeqLen}; ` +
          `cap the context at ${Math.max(0, maxSeqLen - maxNewTokens)} tokens or lower maxNewTokens`,
      );
    }
    for (let t = 0; t < context.length; t++) {
      const id = context[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`request ${i}: context token ${id} at position ${t} is outside the vocabulary [0, ${vocabSize})`);
      }
    }
  });
}
