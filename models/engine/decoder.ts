/// <reference types="@webgpu/types" />
/**
 * Batched decoding on the engine: the same contract as `generate` in models/sampler.ts (the tfjs
 * sampler) — same requests, same per-row random streams, same results — with the KV cache, sampling
 * and log-probs on the GPU. Only token ids and log-probs come back, once every `stepsPerSync` tokens.
 *
 *   slots      the cache holds `maxRows` rows of `cacheLen` positions per layer; a request occupies a
 *              slot from its prefill to its last token, then the slot takes the next waiting request
 *              (continuous batching: finished rows leave, new ones join, nothing is rebuilt)
 *   prefill    the requests admitted together run as one right-padded batch when they fill slots
 *              0..n−1 (the start of a call), else one slot at a time (a view of that slot's cache rows);
 *              query t of a row sees cache positions 0..t
 *   decode     every live slot feeds its last token at position L (its length so far): q/k/v, RoPE,
 *              k/v written into the cache at L, attention over positions 0..L, MLP, logits, then a token
 *              drawn on the GPU from softmax(logits/temperature) (top-p optional) with the row's own
 *              uniform — the next step reads it from GPU memory
 *   sync       after `stepsPerSync` steps the tokens and log-probs of those steps are read back; a row
 *              that stopped inside the window keeps only the tokens up to its stop, and its random
 *              stream is rewound to exactly one draw per kept token (so the stream advances as with the
 *              tfjs sampler)
 * Padding slots and finished rows compute throw-away values that nothing reads.
 */
import type { GenerationOptions, GenerationRequest, GenerationResult, TokenGenerator } from '../sampler.js';
import { checkTemperature } from '../transformer.js';
import { attentionInputs, mlp } from './blocks.js';
import { attentionCached, writeCache } from './kernels/attention.js';
import { embeddingForward, rmsNormForward, sampleTokens } from './kernels/layers.js';
import { matmul } from './kernels/matmul.js';
import type { EngineModel } from './model.js';
import { Arena, allocateArenas, type Recorder, type Tensor } from './runtime.js';

/** Dispatches recorded into one submit at most (a Recorder holds 16384). */
const DISPATCH_BUDGET = 12000;

/** Decoder options. */
export interface DecoderOptions {
  /** Rows decoded at once (cache slots). Default 64. */
  readonly maxRows?: number;
  /** Cache positions per row. Default: the model's maxSeqLen. */
  readonly cacheLen?: number;
  /** Tokens decoded between two read-backs. Default 8. */
  readonly stepsPerSync?: number;
}

/** `GenerationOptions` plus nucleus sampling. */
export interface EngineGenerationOptions extends GenerationOptions {
  /** Keep the smallest set of most likely tokens with mass ≥ topP (1 = the whole vocabulary, the default). */
  readonly topP?: number;
}

interface Buffers {
  readonly arena: Record<string, Arena>;
  readonly kCache: Tensor[];
  readonly vCache: Tensor[];
  // decode step, [R] or [R, w]
  readonly x: Tensor;
  readonly h: Tensor;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly attn: Tensor;
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly act: Tensor;
  readonly rstd: Tensor;
  readonly logits: Tensor;
  readonly lse: Tensor;
  /** Per step of a window: positions [W·R] (also the cache slot written and the last visible key), uniforms [W·R]. */
  readonly positions: Tensor;
  readonly uniforms: Tensor;
  /** Sampled tokens and their log-probs [W·R]; step j writes view j, step j+1 embeds it. */
  readonly tokens: Tensor;
  readonly logProbs: Tensor;
  /** The first token each slot feeds in a window [R]. */
  readonly feed: Tensor;
  readonly zeros: Tensor;
}

interface Slot {
  request: number;
  /** Tokens in this slot's cache (= position of the next fed token). */
  length: number;
  /** The token to feed next (the last context token after prefill, then the last sampled one). */
  pending: number;
}

/**
 * Decoding for one EngineModel's weights (which may keep training: every call reads the current ones).
 * Create with `EngineDecoder.create`; `dispose()` frees its cache.
 */
export class EngineDecoder implements TokenGenerator {
  private constructor(
    private readonly model: EngineModel,
    private readonly buffers: Buffers,
    readonly maxRows: number,
    readonly cacheLen: number,
    readonly stepsPerSync: number,
    /** R rounded up so that every per-row window view starts 256-byte aligned. */
    private readonly rowStride: number,
  ) {}

  /** Dispatches one decode step (or one prefill) records, at most: every layer's kernels and the head. */
  private get dispatchesPerStep(): number {
    return this.model.config.nLayers * 18 + 8;
  }

  /** The model's architecture (TokenGenerator). */
  get config(): EngineModel['config'] {
    return this.model.config;
  }

  static async create(model: EngineModel, options: DecoderOptions = {}): Promise<EngineDecoder> {
    const cfg = model.config;
    const maxRows = options.maxRows ?? 64;
    const cacheLen = Math.ceil((options.cacheLen ?? cfg.maxSeqLen) / 64) * 64;
    const requested = options.stepsPerSync ?? 8;
    if (!(Number.isInteger(maxRows) && maxRows >= 1)) throw new RangeError(`maxRows must be an integer ≥ 1, got ${maxRows}`);
    if (!(Number.isInteger(requested) && requested >= 1)) throw new RangeError(`stepsPerSync must be an integer ≥ 1, got ${requested}`);
    // A window of steps is one submit: no more steps than fit a recorder's dispatch budget.
    const window = Math.max(1, Math.min(requested, Math.floor(DISPATCH_BUDGET / (cfg.nLayers * 18 + 8))));
    const R = Math.ceil(maxRows / 64) * 64;
    const rt = model.rt;
    const d = cfg.dModel;
    const qw = cfg.nHeads * cfg.headDim;
    const kw = cfg.nKvHeads * cfg.headDim;
    const f = cfg.ffnHidden;
    const V = cfg.vocabSize;
    const fp = (n: number) => Arena.footprint(rt.engine, n, 'f32');
    // Prefill shares the step buffers: room for 16K tokens (or one whole row, if longer) at once; more
    // rows than fit are prefilled one at a time. Per worker process this bounds the buffers to ~1 GB at d = 1024.
    const N = Math.max(R, Math.min(R * cacheLen, Math.max(1 << 14, cacheLen)));
    const stepBytes =
      fp(N * d) * 2 + fp(N * qw) * 2 + fp(N * kw) * 2 + fp(N * f) * 3 + fp(N) + fp(R * V) + fp(R) * 3 + fp(window * R) * 4 + 4096;
    const arena = await allocateArenas(rt.engine, `the decoder (${maxRows} rows × ${cacheLen} positions)`, {
      cache: fp(R * cacheLen * kw) * 2 * cfg.nLayers,
      step: stepBytes,
    });
    const C = arena.cache;
    const S = arena.step;
    const buffers: Buffers = {
      arena,
      kCache: Array.from({ length: cfg.nLayers }, (_, l) => C.alloc(`k cache ${l}`, [R * cacheLen, kw])),
      vCache: Array.from({ length: cfg.nLayers }, (_, l) => C.alloc(`v cache ${l}`, [R * cacheLen, kw])),
      x: S.alloc('x', [N, d]),
      h: S.alloc('h', [N, d]),
      q: S.alloc('q', [N, qw]),
      k: S.alloc('k', [N, kw]),
      v: S.alloc('v', [N, kw]),
      attn: S.alloc('attn', [N, qw]),
      gate: S.alloc('gate', [N, f]),
      up: S.alloc('up', [N, f]),
      act: S.alloc('act', [N, f]),
      rstd: S.alloc('rstd', [N]),
      logits: S.alloc('logits', [R, V]),
      lse: S.alloc('lse', [R]),
      positions: S.alloc('positions', [window * R], 'i32'),
      uniforms: S.alloc('uniforms', [window * R]),
      tokens: S.alloc('tokens', [window * R], 'i32'),
      logProbs: S.alloc('log-probs', [window * R]),
      feed: S.alloc('feed', [R], 'i32'),
      zeros: S.alloc('zeros', [R], 'i32'),
    };
    rt.write(buffers.zeros, new Int32Array(R));
    return new EngineDecoder(model, buffers, maxRows, cacheLen, window, R);
  }

  /**
   * Continue every request (see `generate` in models/sampler.ts for the contract). Requests beyond
   * `maxRows` wait for a free slot. Throws RangeError for invalid requests, like the tfjs sampler.
   */
  async generate(requests: readonly GenerationRequest[], options: EngineGenerationOptions): Promise<GenerationResult[]> {
    checkTemperature(options.temperature);
    const topP = options.topP ?? 1;
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
    const cfg = this.model.config;
    requests.forEach((request, i) => {
      const { context, maxNewTokens } = request;
      if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
        throw new RangeError(`request ${i}: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
      if (context.length === 0) throw new RangeError(`request ${i}: context is empty; start it with at least one token (e.g. BOS)`);
      if (context.length + maxNewTokens > Math.min(cfg.maxSeqLen, this.cacheLen)) {
        throw new RangeError(
          `request ${i}: context of ${context.length} tokens + maxNewTokens ${maxNewTokens} exceeds the model's maxSeqLen ${cfg.maxSeqLen}; cap the context at ${Math.max(0, cfg.maxSeqLen - maxNewTokens)} tokens or lower maxNewTokens`,
        );
      }
      for (let t = 0; t < context.length; t++) {
        const id = context[t];
        if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize)
          throw new RangeError(`request ${i}: context token ${id} at position ${t} is outside the vocabulary [0, ${cfg.vocabSize})`);
      }
    });
    const stop = new Set(options.stopTokens);
    const results: GenerationResult[] = requests.map(() => ({ tokens: [], logProbs: [], finishReason: 'length' }));
    const waiting = requests.flatMap((r, i) => (r.maxNewTokens > 0 ? [i] : []));
    const slots: (Slot | undefined)[] = new Array(this.maxRows).fill(undefined);
    const rt = this.model.rt;
    const W = this.stepsPerSync;
    const R = this.rowStride;
    let first = true;
    while (waiting.length > 0 || slots.some((s) => s !== undefined)) {
      const holder = { rec: rt.record('decode') };
      // Admit waiting requests into free slots and prefill them.
      const admitted: number[] = [];
      for (let s = 0; s < this.maxRows && waiting.length > 0; s++) {
        if (slots[s] !== undefined) continue;
        const request = waiting.shift()!;
        slots[s] = { request, length: 0, pending: 0 };
        admitted.push(s);
      }
      if (admitted.length > 0)
        await this.prefill(
          holder,
          admitted.map((s) => ({ slot: s, context: requests[slots[s]!.request].context })),
          first,
        );
      first = false;
      // A window's steps go into one submit; a long prefill before them may already fill that one.
      if (holder.rec.dispatches + W * this.dispatchesPerStep > DISPATCH_BUDGET) {
        holder.rec.submit();
        holder.rec = rt.record('decode');
      }
      const rec = holder.rec;
      for (const s of admitted) {
        const slot = slots[s]!;
        const context = requests[slot.request].context;
        slot.length = context.length - 1;
        slot.pending = context[context.length - 1];
      }
      // The window: W steps for every live slot (slots < `active` are computed; the others are idle).
      const active = slots.reduce((top, s, k) => (s ? k + 1 : top), 0);
      const positions = new Int32Array(W * R);
      const uniforms = new Float32Array(W * R);
      const streams = new Map<number, number[]>();
      for (let s = 0; s < active; s++) {
        const slot = slots[s];
        if (!slot) continue;
        const rng = requests[slot.request].rng;
        streams.set(s, rng.state());
        for (let j = 0; j < W; j++) {
          positions[j * R + s] = Math.min(slot.length + j, this.cacheLen - 1);
          uniforms[j * R + s] = rng.next();
        }
      }
      rt.write(this.buffers.positions, positions);
      rt.write(this.buffers.uniforms, uniforms);
      const feed = new Int32Array(R);
      for (let s = 0; s < active; s++) feed[s] = slots[s]?.pending ?? 0;
      rt.write(this.buffers.feed, feed);
      for (let j = 0; j < W; j++) await this.decodeStep(rec, active, j, options.temperature, topP);
      const tokensPending = rec.readLater(this.buffers.tokens);
      const logProbsPending = rec.readLater(this.buffers.logProbs);
      rec.submit();
      const tokens = (await tokensPending) as Int32Array;
      const logProbs = (await logProbsPending) as Float32Array;
      for (let s = 0; s < active; s++) {
        const slot = slots[s];
        if (!slot) continue;
        const request = requests[slot.request];
        const result = results[slot.request] as { tokens: number[]; logProbs: number[]; finishReason: 'stop' | 'length' };
        let used = 0;
        let finished = false;
        for (let j = 0; j < W && !finished; j++) {
          const token = tokens[j * R + s];
          const logProb = logProbs[j * R + s];
          used++;
          if (token < 0 || !Number.isFinite(logProb)) {
            throw new RangeError(
              `the policy's next-token distribution has no finite probability (row ${slot.request}): its weights are not finite — the update that produced them diverged`,
            );
          }
          result.tokens.push(token);
          result.logProbs.push(logProb);
          if (stop.has(token)) {
            result.finishReason = 'stop';
            finished = true;
          } else if (result.tokens.length >= request.maxNewTokens) finished = true;
        }
        // Rewind the row's stream to one draw per kept token.
        request.rng.restore(streams.get(s)!);
        for (let k = 0; k < used; k++) request.rng.next();
        if (finished) slots[s] = undefined;
        else {
          slot.length += W;
          slot.pending = tokens[(W - 1) * R + s];
        }
      }
    }
    return results;
  }

  /** Free the decoder's cache and buffers (the model is left alone). */
  dispose(): void {
    for (const arena of Object.values(this.buffers.arena)) {
      this.model.rt.forgetBuffer(arena.id);
      arena.destroy();
    }
  }

  /**
   * Run the contexts (all but their last token, which the first decode step feeds) through the model,
   * filling each slot's cache rows. Slots 0..n−1 at the start of a call go as one batch.
   */
  private async prefill(holder: { rec: Recorder }, rows: { slot: number; context: readonly number[] }[], together: boolean): Promise<void> {
    const groups = together && rows.every((r, k) => r.slot === k) ? [rows] : rows.map((r) => [r]);
    for (const group of groups) {
      // Many one-row prefills of a deep model: submit what is recorded before a recorder fills up.
      if (holder.rec.dispatches + this.dispatchesPerStep > DISPATCH_BUDGET) {
        holder.rec.submit();
        holder.rec = this.model.rt.record('prefill');
      }
      const T = Math.max(...group.map((r) => r.context.length - 1));
      if (T === 0) continue;
      // Right-padded: positions past a row's context compute values that its decode overwrites.
      const B = group.length;
      const maxTokens = this.buffers.x.size / this.model.config.dModel;
      if (B * T > maxTokens) {
        // Too many tokens for the step buffers at once: one row at a time.
        if (B > 1) {
          for (const row of group) await this.prefill(holder, [row], false);
          continue;
        }
        throw new RangeError(`a context of ${T + 1} tokens exceeds the decoder's prefill buffer (${maxTokens} tokens)`);
      }
      const ids = new Int32Array(B * T);
      const positions = new Int32Array(B * T);
      group.forEach((r, b) => {
        for (let t = 0; t < T; t++) {
          ids[b * T + t] = t < r.context.length - 1 ? r.context[t] : 0;
          positions[b * T + t] = t;
        }
      });
      await this.forwardTokens(holder.rec, { ids, positions, rows: B, queryLen: T, firstSlot: group[0].slot });
    }
  }

  /** Token ids and positions (CPU) → cache rows of slots firstSlot..firstSlot+rows−1, no logits. */
  private async forwardTokens(
    rec: Recorder,
    input: { ids: Int32Array; positions: Int32Array; rows: number; queryLen: number; firstSlot: number },
  ): Promise<void> {
    const rt = this.model.rt;
    const cfg = this.model.config;
    const bf = this.buffers;
    const { rows: B, queryLen: T } = input;
    const N = B * T;
    // Inputs travel in small dedicated tensors, uploaded now (queue order: before this submit).
    const scratch = new Arena(
      rt.engine,
      'prefill inputs',
      Arena.footprint(rt.engine, N, 'i32') * 2 + Arena.footprint(rt.engine, B, 'i32') * 2,
    );
    const ids = scratch.alloc('ids', [N], 'i32');
    const positions = scratch.alloc('positions', [N], 'i32');
    const zeros = scratch.alloc('key start', [B], 'i32');
    rt.write(ids, input.ids);
    rt.write(positions, input.positions);
    rt.write(zeros, new Int32Array(B));
    const kw = cfg.nKvHeads * cfg.headDim;
    const slotView = (cache: Tensor) => cacheRows(cache, input.firstSlot, B, this.cacheLen, kw);
    await this.layers(rec, { ids, positions, N, B, T, keyStart: zeros, keyEnd: zeros, cacheSlot: zeros, cacheView: slotView });
    // The scratch arena is freed once this submit has run (its buffers stay valid until then).
    const pending = rec.readLater({ ...zeros, size: 1, shape: [1] });
    void pending.then(() => {
      rt.forgetBuffer(scratch.id);
      scratch.destroy();
    });
  }

  /** One decode step j of the window for slots 0..active−1. */
  private async decodeStep(rec: Recorder, active: number, j: number, temperature: number, topP: number): Promise<void> {
    const rt = this.model.rt;
    const cfg = this.model.config;
    const bf = this.buffers;
    const R = this.rowStride;
    const B = active;
    const at = (t: Tensor, step: number) => ({ ...t, offset: t.offset + step * R * 4, bytes: R * 4, shape: [B], size: B });
    const ids = j === 0 ? { ...bf.feed, shape: [B], size: B } : at(bf.tokens, j - 1);
    const positions = at(bf.positions, j);
    const zeros = { ...bf.zeros, shape: [B], size: B };
    const kw = cfg.nKvHeads * cfg.headDim;
    await this.layers(rec, {
      ids,
      positions,
      N: B,
      B,
      T: 1,
      keyStart: zeros,
      keyEnd: positions,
      cacheSlot: positions,
      cacheView: (cache) => cacheRows(cache, 0, B, this.cacheLen, kw),
    });
    const d = cfg.dModel;
    const V = cfg.vocabSize;
    const w = this.model.weights;
    await rmsNormForward(rt, rec, {
      x: view(bf.x, [B, d]),
      gain: w.finalNorm,
      out: view(bf.h, [B, d]),
      rstd: view(bf.rstd, [B]),
      n: B,
      d,
      eps: cfg.normEps,
    });
    await matmul(rt, rec, { a: view(bf.h, [B, d]), b: w.output, c: view(bf.logits, [B, V]), m: B, n: V, k: d, transB: true, path: 'f32' });
    await sampleTokens(rt, rec, {
      logits: view(bf.logits, [B, V]),
      rows: B,
      vocab: V,
      temperature,
      topP,
      uniforms: at(bf.uniforms, j),
      tokens: at(bf.tokens, j),
      logProbs: at(bf.logProbs, j),
      lse: view(bf.lse, [B]),
    });
  }

  /** Embedding and every layer for N = B·T tokens, k/v written into the cache at cacheSlot[b] + t. */
  private async layers(
    rec: Recorder,
    a: {
      ids: Tensor;
      positions: Tensor;
      N: number;
      B: number;
      T: number;
      keyStart: Tensor;
      keyEnd: Tensor;
      cacheSlot: Tensor;
      cacheView: (cache: Tensor) => Tensor;
    },
  ): Promise<void> {
    const rt = this.model.rt;
    const cfg = this.model.config;
    const bf = this.buffers;
    const w = this.model.weights;
    const { N, B, T } = a;
    const d = cfg.dModel;
    const qw = cfg.nHeads * cfg.headDim;
    const kw = cfg.nKvHeads * cfg.headDim;
    const f = cfg.ffnHidden;
    const path = this.model.matmulPath;
    const x = view(bf.x, [N, d]);
    const h = view(bf.h, [N, d]);
    const q = view(bf.q, [N, qw]);
    const k = view(bf.k, [N, kw]);
    const v = view(bf.v, [N, kw]);
    const attn = view(bf.attn, [N, qw]);
    const gate = view(bf.gate, [N, f]);
    const up = view(bf.up, [N, f]);
    const act = view(bf.act, [N, f]);
    const rstd = view(bf.rstd, [N]);
    await embeddingForward(rt, rec, { table: w.embedding, ids: a.ids, out: x, n: N, d });
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = w.layers[l];
      await attentionInputs(rt, rec, cfg, p, { x, h, rstd, q, k, v, positions: a.positions, ropeTable: w.rope, N, path });
      const kCache = a.cacheView(bf.kCache[l]);
      const vCache = a.cacheView(bf.vCache[l]);
      await writeCache(rt, rec, { src: k, cache: kCache, slot: a.cacheSlot, batch: B, queryLen: T, cacheLen: this.cacheLen, width: kw });
      await writeCache(rt, rec, { src: v, cache: vCache, slot: a.cacheSlot, batch: B, queryLen: T, cacheLen: this.cacheLen, width: kw });
      await attentionCached(rt, rec, {
        batch: B,
        queryLen: T,
        cacheLen: this.cacheLen,
        nHeads: cfg.nHeads,
        nKvHeads: cfg.nKvHeads,
        headDim: cfg.headDim,
        q,
        kCache,
        vCache,
        out: attn,
        keyStart: a.keyStart,
        keyEnd: a.keyEnd,
        scale: 1 / Math.sqrt(cfg.headDim),
      });
      await matmul(rt, rec, { a: attn, b: p.o, c: x, m: N, n: d, k: qw, transB: true, accumulate: true, path });
      await mlp(rt, rec, cfg, p, { x, h, rstd, gate, up, act, residual: x, N, path });
    }
  }
}

function view(tensor: Tensor, shape: readonly number[]): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return { ...tensor, shape: [...shape], size };
}

/** Cache rows of slots first..first+count−1: [count·cacheLen, width], starting 256-byte aligned. */
function cacheRows(cache: Tensor, first: number, count: number, cacheLen: number, width: number): Tensor {
  const offset = cache.offset + first * cacheLen * width * 4;
  return { ...cache, offset, bytes: count * cacheLen * width * 4, shape: [count * cacheLen, width], size: count * cacheLen * width };
}
