/**
 * Delethink tracing (Aghajohari et al. 2025, "The Markovian Thinker", arXiv 2510.06557;
 * docs/delethink.md, "Tracing"): a context policy that wraps any single-answer reasoning task.
 * Thinking happens in chunks of bounded context; at each boundary the context is wiped and the next
 * chunk's prompt is the query, the head of chunk 1 and a short carryover from the end of the previous
 * chunk. Everything works on token ids; nothing is re-tokenised.
 *
 *   chunk 1   x₁ = q                                     budget C
 *   chunk l   x_l = q ⊕ H ⊕ tail(y_{l−1})                budget C − m        (l ≥ 2)
 *             H = y₁[0 : h];  tail = last m tokens (`paper`) or last m − h tokens (`released`)
 *   stop      when a chunk ends with the stop token (EOS), or after I chunks (the trace is truncated)
 *   budget    ℓ_max = C + (I − 1)(C − m)
 *
 * `traceBatch` is the pure core: K traces in lock-step, one batched generator call per chunk index over
 * the traces still running. `runDelethinkGroup` runs it with the transformer sampler against an
 * environment: `reset` gives the question, the text of the LAST chunk goes to `step` once, and `score` is
 * called once per trace (spec "Reward", invariant 7). LongCoT is the same loop with one chunk of the whole
 * budget (`longCotTracing`).
 *
 * "The text of the last chunk" is its window after q ⊕ H: the carryover it was given and its response
 * (`finalWindowTokens`). With the paper's C = 8192 an answer almost never straddles a chunk boundary; with
 * the small chunks a byte-level policy uses (C − m ≈ 32) a 20-byte `</think> \boxed{…}` would be cut
 * by a boundary more often than not, and the response alone would then hold half an answer. The
 * carryover repairs that while the reward still reads nothing the last chunk did not see.
 *
 * Tokens: every prompt starts with the query ids, and the rollout query is BOS followed by the
 * question's bytes, so every chunk's context starts with BOS, like a LOOP episode and like the SFT rows
 * of `demonstrationTraceSegments` (which builds the same query; `delethinkDemonstrationSegments` takes
 * the query ids as given).
 */
import { ConfigError, EnvError } from '../core/errors.js';
import type { Demonstration, Env, Reward } from '../envs/types.js';
import { generateWith, type GenerationPolicy } from '../models/sampler.js';
import { BOS_ID as BOS, EOT_ID as EOT, ByteTokenizer } from '../models/tokenizer.js';
import type { GroupOutcome, GroupSpec } from './episode.js';
import type { FinishReason, Segment, Trajectory } from './trajectory.js';
import { thinkingBudget } from '../configs/resolve.js';

const tokenizer = new ByteTokenizer();

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Parameters
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** The tracing parameters (config section `delethink`), all in tokens except `maxChunks`. */
export interface DelethinkTracing {
  /** C: new tokens of chunk 1 (paper: 8192). */
  readonly chunkTokens: number;
  /**
   * m: carryover; chunks l ≥ 2 generate C − m new tokens (paper: C/2). 0 ≤ m < C. With m > C − m the
   * carry of chunks l ≥ 3 is the whole previous chunk (C − m tokens), as in the reference tracer.
   */
  readonly carryoverTokens: number;
  /** h: first tokens of chunk 1 repeated at the start of every later prompt (paper: 100). */
  readonly headTokens: number;
  /** I: most chunks per trace; a trace that reaches it is truncated. */
  readonly maxChunks: number;
  /**
   * What follows q ⊕ H in a prompt l ≥ 2: `paper` — the last m tokens of y_{l−1} (context ≤ |q| + h + C);
   * `released` — the last m − h tokens (head + tail = m, context ≤ |q| + C; needs h ≤ m).
   */
  readonly carry: 'paper' | 'released';
}

/**
 * Checks the invariants of the parameters and returns them: integers, C ≥ 1, 0 ≤ m < C (so every chunk
 * has room for at least one new token), h ≥ 0 and h ≤ C (`paper`) or h ≤ m (`released`), I ≥ 1.
 * Throws ConfigError naming the offending field.
 */
export function checkTracing(t: DelethinkTracing): DelethinkTracing {
  const fields: Array<[keyof DelethinkTracing, number, number]> = [
    ['chunkTokens', t.chunkTokens, 1],
    ['carryoverTokens', t.carryoverTokens, 0],
    ['headTokens', t.headTokens, 0],
    ['maxChunks', t.maxChunks, 1],
  ];
  for (const [name, value, min] of fields) {
    if (!Number.isInteger(value) || value < min) throw new ConfigError(`delethink.${name} must be an integer ≥ ${min}, got ${value}`);
  }
  if (t.carry !== 'paper' && t.carry !== 'released') {
    throw new ConfigError(`delethink.carry must be 'paper' or 'released', got ${JSON.stringify(t.carry)}`);
  }
  if (t.carryoverTokens >= t.chunkTokens) {
    throw new ConfigError(
      `delethink.carryoverTokens (m = ${t.carryoverTokens}) must be smaller than delethink.chunkTokens (C = ${t.chunkTokens}): chunks after the first generate C − m tokens`,
    );
  }
  if (t.carry === 'released' && t.headTokens > t.carryoverTokens) {
    throw new ConfigError(
      `delethink.headTokens (h = ${t.headTokens}) must be ≤ delethink.carryoverTokens (m = ${t.carryoverTokens}) with carry 'released' (head + tail = m)`,
    );
  }
  if (t.headTokens > t.chunkTokens) {
    throw new ConfigError(
      `delethink.headTokens (h = ${t.headTokens}) must be ≤ delethink.chunkTokens (C = ${t.chunkTokens}): the head is cut from chunk 1`,
    );
  }
  return t;
}

/** The LongCoT baseline as a tracing: one chunk of the whole thinking budget, no carryover, no head. */
export function longCotTracing(budget: number): DelethinkTracing {
  return checkTracing({ chunkTokens: budget, carryoverTokens: 0, headTokens: 0, maxChunks: 1, carry: 'paper' });
}

/** ℓ_max = C + (I − 1)(C − m): the most thinking tokens of a trace (docs/delethink.md, "Tracing"; 24,576 for 8192/4096/5). */
export { thinkingBudget };

/** max_new_tokens of chunk `chunkIndex` (0-based): C for the first, C − m after (docs/delethink.md, "Tracing"). */
export function chunkBudget(t: DelethinkTracing, chunkIndex: number): number {
  return chunkIndex === 0 ? t.chunkTokens : t.chunkTokens - t.carryoverTokens;
}

/** Tokens carried from the end of the previous chunk: m (`paper`) or m − h (`released`). */
export function carryoverTailLength(t: DelethinkTracing): number {
  return t.carry === 'paper' ? t.carryoverTokens : t.carryoverTokens - t.headTokens;
}

/**
 * The exact prompt of a chunk (spec steps 1, 2 and 4), as fresh arrays:
 *   previous undefined → chunk 1: the query ids;
 *   otherwise          → q ⊕ head[0:h] ⊕ previous[|previous| − tail :], tail = `carryoverTailLength`.
 * `head` is chunk 1's response (only its first h tokens are used); `previous` is y_{l−1}. A previous
 * chunk shorter than the tail is carried whole (possible only when m > C − m).
 * Example (paper, h 2, m 3): q [1,2], y₁ [10,11,12,13,14,15] → chunk 2 prompt [1,2,10,11,13,14,15].
 */
export function chunkPrompt(
  query: readonly number[],
  head: readonly number[],
  previous: readonly number[] | undefined,
  t: DelethinkTracing,
): number[] {
  if (previous === undefined) return [...query];
  const tail = carryoverTailLength(t);
  return [...query, ...head.slice(0, t.headTokens), ...previous.slice(Math.max(0, previous.length - tail))];
}

/**
 * The longest context (prompt + new tokens) any chunk of a trace can need, for a query of `queryLength`
 * ids: |q| + C for chunk 1; |q| + h + tail + (C − m) for later ones, i.e. |q| + h + C (`paper`) or
 * |q| + C (`released`) (invariant 3). The policy's maxSeqLen must cover it.
 */
export function maxChunkContext(queryLength: number, t: DelethinkTracing): number {
  const first = queryLength + t.chunkTokens;
  if (t.maxChunks === 1) return first;
  const later = queryLength + t.headTokens + Math.min(carryoverTailLength(t), t.chunkTokens) + chunkBudget(t, 1);
  return Math.max(first, later);
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// The pure core: K traces in lock-step
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** What the generator is asked for: continue `context` by at most `maxNewTokens` tokens. */
export interface ChunkRequest {
  /** Index of the trace in the `queries` given to `traceBatch`. */
  readonly trace: number;
  /** 0-based chunk index l − 1. */
  readonly chunk: number;
  /** The chunk's prompt x_l, exactly (invariant 8). */
  readonly context: readonly number[];
  /** C for chunk 1, C − m after. */
  readonly maxNewTokens: number;
}

/**
 * What the generator returns for one request: the sampled ids and their sampler log-probs. `stopped`
 * means the last token is the stop token; otherwise exactly `maxNewTokens` tokens were generated.
 */
export interface ChunkSample {
  readonly tokens: readonly number[];
  readonly logProbs: readonly number[];
  readonly stopped: boolean;
}

/** A batched generator: one result per request, in order, each from a fresh context (no state kept). */
export type ChunkGenerator = (requests: readonly ChunkRequest[]) => Promise<readonly ChunkSample[]>;

/** One chunk of a trace: its prompt x_l, its response y_l and the sampler log-probs of y_l ([|y_l|]). */
export interface TraceChunk {
  readonly prompt: readonly number[];
  readonly response: readonly number[];
  readonly logProbs: readonly number[];
}

/** Why a trace ended: EOS sampled, chunk cap I reached (truncated), or cancelled by `shouldStop`. */
export type TraceFinish = 'eos' | 'max_chunks' | 'cancelled';

/** A finished (or cancelled) trace. */
export interface Trace {
  readonly chunks: readonly TraceChunk[];
  readonly finish: TraceFinish;
  /** ℓ(τ) = Σ_l |y_l|: sampled tokens over all chunks, the stop token included (≤ `thinkingBudget`). */
  readonly thinkingTokens: number;
}

/** Hooks of `traceBatch`. */
export interface TraceBatchOptions {
  /** Polled before every chunk index; true cancels every trace still running (straggler early stop). */
  readonly shouldStop?: () => Promise<boolean> | boolean;
  /** Called as soon as a trace finishes (EOS or cap), before the next chunk index; not for cancelled traces. */
  readonly onTraceFinished?: (trace: number, result: Trace) => Promise<void> | void;
}

interface LiveTrace {
  readonly query: readonly number[];
  readonly chunks: TraceChunk[];
  finish?: TraceFinish;
}

/**
 * Run one trace per query in lock-step: for chunk index l = 0, 1, … one `generate` call with a request
 * for every trace still running, until each has sampled `stopToken` or produced I chunks. The
 * generator's results are checked against its contract (a result that is neither stopped nor full, or a
 * stop token before the end, throws RangeError), so the invariants of the spec hold by construction:
 * chunk 1 sees q with budget C, chunk l ≥ 2 sees exactly `chunkPrompt` with budget C − m, and every chunk
 * but the last ends at its budget without EOS. Results are in query order.
 */
export async function traceBatch(
  generator: ChunkGenerator,
  queries: readonly (readonly number[])[],
  t: DelethinkTracing,
  stopToken: number,
  options: TraceBatchOptions = {},
): Promise<Trace[]> {
  checkTracing(t);
  queries.forEach((query, i) => {
    if (query.length === 0) throw new RangeError(`query ${i} is empty; a chunk's context needs at least one token (e.g. BOS)`);
  });
  const traces: LiveTrace[] = queries.map((query) => ({ query: [...query], chunks: [] }));
  for (let chunk = 0; ; chunk++) {
    const active = traces.flatMap((trace, i) => (trace.finish === undefined ? [i] : []));
    if (active.length === 0) break;
    if (options.shouldStop && (await options.shouldStop())) {
      for (const i of active) traces[i].finish = 'cancelled';
      break;
    }
    const requests: ChunkRequest[] = active.map((i) => ({
      trace: i,
      chunk,
      context: nextPrompt(traces[i], t),
      maxNewTokens: chunkBudget(t, chunk),
    }));
    const samples = await generator(requests);
    if (samples.length !== requests.length) {
      throw new RangeError(`the generator returned ${samples.length} results for ${requests.length} requests (chunk ${chunk})`);
    }
    for (let r = 0; r < requests.length; r++) {
      const trace = traces[requests[r].trace];
      acceptChunk(trace, requests[r], samples[r], t, stopToken);
      if (trace.finish !== undefined) await options.onTraceFinished?.(requests[r].trace, finishedTrace(trace));
    }
  }
  return traces.map(finishedTrace);
}

function nextPrompt(trace: LiveTrace, t: DelethinkTracing): number[] {
  const { chunks } = trace;
  if (chunks.length === 0) return chunkPrompt(trace.query, [], undefined, t);
  return chunkPrompt(trace.query, chunks[0].response, chunks[chunks.length - 1].response, t);
}

function acceptChunk(trace: LiveTrace, request: ChunkRequest, sample: ChunkSample, t: DelethinkTracing, stopToken: number): void {
  const { tokens, logProbs, stopped } = sample;
  const where = `trace ${request.trace}, chunk ${request.chunk}`;
  if (tokens.length !== logProbs.length) throw new RangeError(`${where}: ${tokens.length} tokens but ${logProbs.length} log-probs`);
  if (tokens.length > request.maxNewTokens)
    throw new RangeError(`${where}: ${tokens.length} tokens exceed maxNewTokens ${request.maxNewTokens}`);
  const firstStop = tokens.indexOf(stopToken);
  if (firstStop >= 0 && firstStop !== tokens.length - 1)
    throw new RangeError(`${where}: the stop token at position ${firstStop} is not the last token`);
  if (stopped !== firstStop >= 0) {
    throw new RangeError(`${where}: stopped is ${stopped} but the last token ${stopped ? 'is not' : 'is'} the stop token ${stopToken}`);
  }
  if (!stopped && tokens.length !== request.maxNewTokens) {
    throw new RangeError(
      `${where}: ${tokens.length} tokens without the stop token; a chunk ends at the stop token or at its budget of ${request.maxNewTokens}`,
    );
  }
  trace.chunks.push({ prompt: request.context, response: [...tokens], logProbs: [...logProbs] });
  if (stopped) trace.finish = 'eos';
  else if (trace.chunks.length >= t.maxChunks) trace.finish = 'max_chunks';
}

function finishedTrace(trace: LiveTrace): Trace {
  return {
    chunks: trace.chunks,
    finish: trace.finish ?? 'cancelled',
    thinkingTokens: trace.chunks.reduce((n, c) => n + c.response.length, 0),
  };
}

/**
 * The tokens the reward reads (invariant 7): the last chunk's window after q ⊕ H, i.e. the carryover
 * tail of y_{L−1} that its prompt holds, followed by y_L. A one-chunk trace (LongCoT) gives y_1.
 * Example (paper, m 3): responses [10..15], [20, 21, 22] → [13, 14, 15, 20, 21, 22].
 */
export function finalWindowTokens(chunks: readonly { readonly response: readonly number[] }[], t: DelethinkTracing): number[] {
  if (chunks.length === 0) return [];
  const last = chunks[chunks.length - 1].response;
  if (chunks.length === 1) return [...last];
  const previous = chunks[chunks.length - 2].response;
  return [...previous.slice(Math.max(0, previous.length - carryoverTailLength(t))), ...last];
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// Training segments
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** How chunks become segments. */
export interface SegmentOptions {
  /** The policy's stop token (default EOT). */
  readonly stopToken?: number;
  /** Whether a sampled stop token is trained (isOutput 1); config `rollout.trainOnEndOfTurn`. Default true. */
  readonly trainOnStopToken?: boolean;
}

/**
 * The training rows of a trace: one segment per chunk, prompt tokens (isOutput 0, turn −1) followed by
 * the response (isOutput 1, sampler log-probs, turn = chunk index). Carryover tokens are prompt tokens
 * of their chunk, so they get no gradient there (spec "Objective").
 */
export function chunkSegments(chunks: readonly TraceChunk[], options: SegmentOptions = {}): Segment[] {
  const stopToken = options.stopToken ?? EOT;
  const trainStop = options.trainOnStopToken ?? true;
  return chunks.map((chunk, l) => {
    const tokens = [...chunk.prompt, ...chunk.response];
    const isOutput: (0 | 1)[] = [
      ...chunk.prompt.map(() => 0 as const),
      ...chunk.response.map((id) => (id !== stopToken || trainStop ? 1 : 0) as 0 | 1),
    ];
    const logProbs = [
      ...chunk.prompt.map(() => 0),
      ...chunk.response.map((_, j) => (isOutput[chunk.prompt.length + j] ? chunk.logProbs[j] : 0)),
    ];
    const turn = [...chunk.prompt.map(() => -1), ...chunk.response.map(() => l)];
    return { tokens, isOutput, logProbs, turn };
  });
}

/**
 * Chunk a scripted full trace exactly as `traceBatch` would have if the policy had sampled these tokens
 * (SFT rows of the warm start): chunk 1 takes the first C tokens, chunk l ≥ 2 the next C − m with the
 * prompt `chunkPrompt`; a chunk ends early at the stop token. Tokens beyond I chunks are dropped (the
 * trace is truncated at the cap, as a live one would be); a trace without the stop token ends with a
 * shorter last chunk. Log-probs are 0. A trace of at most C tokens gives one segment.
 */
export function delethinkDemonstrationSegments(
  queryTokens: readonly number[],
  traceTokens: readonly number[],
  tracing: DelethinkTracing,
  options: SegmentOptions = {},
): Segment[] {
  return chunkSegments(demonstrationChunks(queryTokens, traceTokens, tracing, options.stopToken ?? EOT), options);
}

/** The chunks of a scripted trace (see `delethinkDemonstrationSegments`). */
export function demonstrationChunks(
  queryTokens: readonly number[],
  traceTokens: readonly number[],
  t: DelethinkTracing,
  stopToken: number = EOT,
): TraceChunk[] {
  checkTracing(t);
  const chunks: TraceChunk[] = [];
  let position = 0;
  while (position < traceTokens.length && chunks.length < t.maxChunks) {
    const index = chunks.length;
    const prompt = chunkPrompt(queryTokens, index === 0 ? [] : chunks[0].response, index === 0 ? undefined : chunks[index - 1].response, t);
    let response = traceTokens.slice(position, position + chunkBudget(t, index));
    const stop = response.indexOf(stopToken);
    if (stop >= 0) response = response.slice(0, stop + 1);
    chunks.push({ prompt, response, logProbs: response.map(() => 0) });
    position += response.length;
    if (stop >= 0) break;
  }
  return chunks;
}

/**
 * SFT rows of an environment's demonstration under Delethink tracing. The demonstration is one question
 * and one policy turn holding the whole scripted trace (`{turns: [env q, policy trace]}`); the query is
 * BOS ⊕ bytes(q), as in `runDelethinkGroup`, and the trace is bytes(trace) ⊕ EOT.
 */
export function demonstrationTraceSegments(
  demo: Demonstration,
  tracing: DelethinkTracing,
  options: { trainOnEndOfTurn?: boolean } = {},
): Segment[] {
  const [question, trace, ...rest] = demo.turns;
  if (question?.role !== 'env' || trace?.role !== 'policy' || rest.length > 0) {
    throw new EnvError(
      `a Delethink demonstration must be exactly [{role: 'env', text: question}, {role: 'policy', text: trace}], got roles [${demo.turns.map((p) => p.role).join(', ')}]`,
    );
  }
  const query = [BOS, ...tokenizer.encode(question.text)];
  return delethinkDemonstrationSegments(query, [...tokenizer.encode(trace.text), EOT], tracing, {
    trainOnStopToken: options.trainOnEndOfTurn ?? true,
  });
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────
// A group against an environment, with the transformer sampler
// ─────────────────────────────────────────────────────────────────────────────────────────────────────

interface Member {
  readonly k: number;
  readonly env: Env;
  readonly query: number[];
  readonly retries: number;
  readonly startedAt: number;
  closed: boolean;
}

/**
 * Run the K traces of a group (spec "Tracing" and "Reward") and return them as trajectories whose
 * segments are the chunks (`chunkSegments`). Per member k: a fresh env, `reset(task)` → question (task =
 * `spec.memberTasks[k]` when given, else `spec.task`), query =
 * BOS ⊕ bytes(question); the traces run in lock-step (`traceBatch`) with the sampler at
 * `limits.temperature`, stop token EOT; when a trace ends, `env.step(text of its last chunk)` (its
 * carryover and response, `finalWindowTokens`) and then `env.score()` are called once (invariant 7; the
 * step's reply is ignored). An env failure (reset, step
 * or score) restarts that member with a fresh env and a new trace, up to `limits.episodeRetries` times,
 * then fails the group, as `runGroup` does. `shouldStop` is polled before every chunk index; traces still
 * running then are listed as cancelled. `limits.maxTurns`, `maxTokensPerTurn`, `maxContextTokens` and
 * `maxObservationTokens` do not apply (the tracing bounds every chunk); the question is never truncated.
 * Throws RangeError when a chunk's context (`maxChunkContext`) would not fit the model's maxSeqLen.
 */
export async function runDelethinkGroup<Options>(
  policy: GenerationPolicy,
  spec: GroupSpec<Options>,
  tracing: DelethinkTracing,
): Promise<GroupOutcome> {
  checkTracing(tracing);
  const { limits } = spec;
  const trajectories: Trajectory[] = [];
  const cancelled: number[] = [];
  let generatedTokens = 0;
  const retries = new Array<number>(spec.groupSize).fill(0);
  let pending = Array.from({ length: spec.groupSize }, (_, k) => k);

  while (pending.length > 0) {
    const members: Member[] = [];
    try {
      for (const k of pending) members.push(await startMember(spec, k, retries[k]));
      for (const m of members) {
        const needed = maxChunkContext(m.query.length, tracing);
        if (needed > policy.config.maxSeqLen) {
          throw new RangeError(
            `a Delethink chunk needs up to ${needed} tokens of context (query ${m.query.length} + chunk ${tracing.chunkTokens}` +
              `${tracing.carry === 'paper' && tracing.maxChunks > 1 ? ` + head ${tracing.headTokens}` : ''}) but the model's maxSeqLen is ${policy.config.maxSeqLen}; ` +
              'raise model.maxSeqLen or lower delethink.chunkTokens',
          );
        }
      }
      const failed: number[] = [];
      const generator: ChunkGenerator = async (requests) => {
        const results = await generateWith(
          policy,
          requests.map((r) => ({ context: r.context, maxNewTokens: r.maxNewTokens, rng: spec.rngs[members[r.trace].k] })),
          { temperature: limits.temperature, stopTokens: [EOT] },
        );
        for (const r of results) generatedTokens += r.tokens.length;
        return results.map((r) => ({ tokens: r.tokens, logProbs: r.logProbs, stopped: r.finishReason === 'stop' }));
      };
      const traces = await traceBatch(
        generator,
        members.map((m) => m.query),
        tracing,
        EOT,
        {
          shouldStop: spec.shouldStop,
          onTraceFinished: async (i, trace) => {
            const m = members[i];
            let reward: Reward;
            try {
              await m.env.step(tokenizer.decode(finalWindowTokens(trace.chunks, tracing)));
              reward = await m.env.score();
              checkReward(reward);
            } catch (err) {
              await closeMember(m);
              if (m.retries >= limits.episodeRetries) throw groupFailure(spec, m.k, err);
              retries[m.k] = m.retries + 1;
              failed.push(m.k);
              return;
            }
            await closeMember(m);
            trajectories.push(toTrajectory(spec, m, trace, reward));
            await spec.onFinished?.(m.k);
          },
        },
      );
      traces.forEach((trace, i) => {
        if (trace.finish === 'cancelled') cancelled.push(members[i].k);
      });
      // After a stop request, members waiting for a retry are cancelled too.
      if (cancelled.length > 0) {
        cancelled.push(...failed);
        pending = [];
      } else pending = failed;
    } finally {
      for (const m of members) await closeMember(m);
    }
  }
  trajectories.sort((a, b) => a.rolloutId.localeCompare(b.rolloutId));
  return { trajectories, cancelled: cancelled.sort((a, b) => a - b), generatedTokens };
}

async function startMember<Options>(spec: GroupSpec<Options>, k: number, retries: number): Promise<Member> {
  let env: Env | undefined;
  try {
    env = await spec.env.create(spec.envOptions);
    const question = await env.reset(spec.memberTasks?.[k] ?? spec.task);
    if (typeof question !== 'string') throw new EnvError(`reset() must return the question text, got ${typeof question}`);
    return { k, env, query: [BOS, ...tokenizer.encode(question)], retries, startedAt: Date.now(), closed: false };
  } catch (err) {
    if (env) await closeQuietly(env);
    if (retries < spec.limits.episodeRetries) return startMember(spec, k, retries + 1);
    throw groupFailure(spec, k, err);
  }
}

function toTrajectory<Options>(spec: GroupSpec<Options>, m: Member, trace: Trace, reward: Reward): Trajectory {
  const finishReason: FinishReason = trace.finish === 'eos' ? 'done' : 'max_turns';
  return {
    rolloutId: spec.rolloutIds[m.k],
    groupId: spec.groupId,
    policyVersion: spec.policyVersion,
    segments: chunkSegments(trace.chunks, { stopToken: EOT, trainOnStopToken: spec.limits.trainOnEndOfTurn }),
    reward: {
      total: reward.total,
      parts: { ...reward.parts },
      ...(reward.turnRewards !== undefined ? { turnRewards: [...reward.turnRewards] } : {}),
    },
    finishReason,
    turns: trace.chunks.length,
    retries: m.retries,
    wallMs: Date.now() - m.startedAt,
  };
}

function groupFailure<Options>(spec: GroupSpec<Options>, k: number, err: unknown): EnvError {
  const reason = err instanceof Error ? err.message : String(err);
  const task = spec.memberTasks?.[k] ?? spec.task;
  return new EnvError(
    `trace ${k} of group ${spec.groupId} (${spec.env.name}, task ${task.split}#${task.index}) failed after ${spec.limits.episodeRetries} retries: ${reason}`,
    { cause: err, context: { groupId: spec.groupId, k } },
  );
}

function checkReward(reward: Reward): void {
  if (typeof reward !== 'object' || reward === null || !Number.isFinite(reward.total)) {
    throw new EnvError(`score() must return { total: finite number, parts }, got ${JSON.stringify(reward)}`);
  }
}

async function closeMember(m: Member): Promise<void> {
  if (m.closed) return;
  m.closed = true;
  await closeQuietly(m.env);
}

async function closeQuietly(env: Env): Promise<void> {
  try {
    await env.close?.();
  } catch {
    // Closing is best effort; the trace's result does not depend on it.
  }
}
