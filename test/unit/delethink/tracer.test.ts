/**
 * Delethink tracing (rollout/delethink.ts) against a recording fake generator: spec invariants 1–4 and 8
 * asserted on exactly what the generator was given, for hand-picked cases and for random C, m, h, I
 * (fast-check), both carry variants, LongCoT as one chunk, the generator contract, the straggler stop,
 * and SFT chunking equal to what the tracer produces from the same tokens.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { EOT_ID } from '../../../models/tokenizer.js';
import {
  checkTracing,
  chunkPrompt,
  chunkSegments,
  delethinkDemonstrationSegments,
  longCotTracing,
  maxChunkContext,
  thinkingBudget,
  traceBatch,
  type ChunkGenerator,
  type ChunkRequest,
  type DelethinkTracing,
  type Trace,
} from '../../../rollout/delethink.js';

const STOP = 1;

/**
 * A generator that replays one token script per trace: trace k's script is its whole thinking, each token
 * a unique id (so any token found in a context can be traced back to its chunk), ending with STOP. Every
 * call is recorded with copies of its requests.
 */
function scriptedGenerator(scripts: readonly (readonly number[])[]) {
  const calls: ChunkRequest[][] = [];
  const position = scripts.map(() => 0);
  const generate: ChunkGenerator = async (requests) => {
    calls.push(requests.map((r) => ({ ...r, context: [...r.context] })));
    return requests.map((r) => {
      const script = scripts[r.trace];
      let tokens = script.slice(position[r.trace], position[r.trace] + r.maxNewTokens);
      const stop = tokens.indexOf(STOP);
      if (stop >= 0) tokens = tokens.slice(0, stop + 1);
      position[r.trace] += tokens.length;
      return { tokens, logProbs: tokens.map((_, i) => -0.01 * (i + 1)), stopped: stop >= 0 };
    });
  };
  return { generate, calls };
}

/** A script of `length` thinking tokens (unique ids ≥ 1000·(k+1)), the last one STOP. */
function script(k: number, length: number): number[] {
  return Array.from({ length }, (_, i) => (i === length - 1 ? STOP : 1000 * (k + 1) + i));
}

/** Expected prompt of chunk l ≥ 2, written out from the spec independently of `chunkPrompt`. */
function expectedPrompt(query: readonly number[], first: readonly number[], previous: readonly number[], t: DelethinkTracing): number[] {
  const tail = t.carry === 'paper' ? t.carryoverTokens : t.carryoverTokens - t.headTokens;
  const carried = tail === 0 ? [] : previous.slice(-tail);
  return [...query, ...first.slice(0, t.headTokens), ...carried];
}

/** Check invariants 1–4 and 8 on the recorded calls and the returned traces. */
function assertInvariants(t: DelethinkTracing, queries: readonly number[][], calls: ChunkRequest[][], traces: Trace[]): void {
  const C = t.chunkTokens;
  const m = t.carryoverTokens;
  // One call per chunk index, over exactly the traces that have a chunk at that index.
  calls.forEach((requests, l) => {
    expect(requests.map((r) => r.chunk)).toEqual(requests.map(() => l));
    expect(requests.map((r) => r.trace)).toEqual(traces.flatMap((trace, k) => (trace.chunks.length > l ? [k] : [])));
  });
  traces.forEach((trace, k) => {
    const seen = calls.flatMap((requests) => requests.filter((r) => r.trace === k));
    expect(seen).toHaveLength(trace.chunks.length);
    // Invariant 3: L ≤ I.
    expect(trace.chunks.length).toBeLessThanOrEqual(t.maxChunks);
    seen.forEach((request, l) => {
      const chunk = trace.chunks[l];
      // Invariant 1: chunk 1 sees q with budget C; later chunks budget C − m.
      if (l === 0) {
        expect(request.context).toEqual(queries[k]);
        expect(request.maxNewTokens).toBe(C);
      } else {
        expect(request.maxNewTokens).toBe(C - m);
        // Invariants 2 and 8: exactly q ⊕ y₁[0:h] ⊕ tail(y_{l−1}), nothing else from earlier chunks.
        const expected = expectedPrompt(queries[k], trace.chunks[0].response, trace.chunks[l - 1].response, t);
        expect(request.context).toEqual(expected);
        const allowed = new Set([...trace.chunks[0].response.slice(0, t.headTokens), ...trace.chunks[l - 1].response]);
        const older = trace.chunks
          .slice(0, l)
          .flatMap((c) => c.response)
          .filter((id) => !allowed.has(id));
        for (const id of older) expect(request.context).not.toContain(id);
      }
      // Invariant 3: context ≤ |q| + C (+ h in the paper variant).
      const bound = queries[k].length + C + (t.carry === 'paper' ? t.headTokens : 0);
      expect(request.context.length + request.maxNewTokens).toBeLessThanOrEqual(bound);
      expect(request.context.length + request.maxNewTokens).toBeLessThanOrEqual(maxChunkContext(queries[k].length, t));
      expect(chunk.prompt).toEqual(request.context);
      // Invariant 3: every chunk but the last hits its budget without EOS.
      if (l < trace.chunks.length - 1) {
        expect(chunk.response).toHaveLength(request.maxNewTokens);
        expect(chunk.response).not.toContain(STOP);
      }
    });
    const last = trace.chunks[trace.chunks.length - 1].response;
    if (trace.finish === 'eos') expect(last[last.length - 1]).toBe(STOP);
    else expect(trace.finish === 'max_chunks' && trace.chunks.length === t.maxChunks && !last.includes(STOP)).toBe(true);
    // Invariant 4: ℓ(τ) ≤ C + (I − 1)(C − m).
    const length = trace.chunks.reduce((n, c) => n + c.response.length, 0);
    expect(trace.thinkingTokens).toBe(length);
    expect(length).toBeLessThanOrEqual(thinkingBudget(t));
  });
}

describe('tracing parameters', () => {
  it('computes the paper budgets: 24K for I = 5, 96K for I = 23, 128K for I = 31', () => {
    const paper = { chunkTokens: 8192, carryoverTokens: 4096, headTokens: 100, carry: 'paper' as const };
    expect(thinkingBudget({ ...paper, maxChunks: 5 })).toBe(24_576);
    expect(thinkingBudget({ ...paper, maxChunks: 23 })).toBe(98_304);
    expect(thinkingBudget({ ...paper, maxChunks: 31 })).toBe(131_072);
    expect(thinkingBudget(longCotTracing(24_576))).toBe(24_576);
  });

  it('builds chunk prompts on token ids for both carry variants (worked example)', () => {
    const q = [1, 2];
    const y1 = [10, 11, 12, 13, 14, 15];
    const paper: DelethinkTracing = { chunkTokens: 6, carryoverTokens: 3, headTokens: 2, maxChunks: 3, carry: 'paper' };
    expect(chunkPrompt(q, y1, undefined, paper)).toEqual([1, 2]);
    expect(chunkPrompt(q, y1, y1, paper)).toEqual([1, 2, 10, 11, 13, 14, 15]);
    expect(chunkPrompt(q, y1, y1, { ...paper, carry: 'released' })).toEqual([1, 2, 10, 11, 15]);
    expect(chunkPrompt(q, y1, [20, 21, 22], paper)).toEqual([1, 2, 10, 11, 20, 21, 22]);
    expect(chunkPrompt(q, y1, [20, 21, 22], { ...paper, headTokens: 0 })).toEqual([1, 2, 20, 21, 22]);
    expect(chunkPrompt(q, y1, [20, 21, 22], { ...paper, headTokens: 3, carry: 'released' })).toEqual([1, 2, 10, 11, 12]);
  });

  it('bounds the context of every chunk: |q| + h + C (paper), |q| + C (released)', () => {
    const t: DelethinkTracing = { chunkTokens: 64, carryoverTokens: 32, headTokens: 8, maxChunks: 4, carry: 'paper' };
    expect(maxChunkContext(20, t)).toBe(20 + 8 + 64);
    expect(maxChunkContext(20, { ...t, carry: 'released' })).toBe(20 + 64);
    expect(maxChunkContext(20, { ...t, maxChunks: 1 })).toBe(84);
  });

  it('refuses inconsistent parameters with a ConfigError naming the field', () => {
    const t: DelethinkTracing = { chunkTokens: 64, carryoverTokens: 32, headTokens: 8, maxChunks: 4, carry: 'paper' };
    expect(() => checkTracing({ ...t, carryoverTokens: 64 })).toThrow(/carryoverTokens \(m = 64\) must be smaller/);
    expect(() => checkTracing({ ...t, headTokens: 40, carry: 'released' })).toThrow(ConfigError);
    expect(() => checkTracing({ ...t, maxChunks: 0 })).toThrow(/maxChunks must be an integer ≥ 1/);
    expect(() => checkTracing({ ...t, chunkTokens: 2.5 })).toThrow(ConfigError);
  });
});

describe('traceBatch', () => {
  const tracing: DelethinkTracing = { chunkTokens: 8, carryoverTokens: 4, headTokens: 2, maxChunks: 4, carry: 'paper' };

  it('runs traces in lock-step with one generator call per chunk index (paper carry)', async () => {
    // Lengths: EOS inside chunk 1; exactly at the end of chunk 2; inside chunk 3; never (truncated at I = 4).
    const scripts = [script(0, 5), script(1, 12), script(2, 14), [...script(3, 40).slice(0, 39), 5000]];
    const queries = [[7, 8, 9], [7], [7, 8], [9, 9, 9, 9]];
    const { generate, calls } = scriptedGenerator(scripts);
    const traces = await traceBatch(generate, queries, tracing, STOP);
    expect(calls).toHaveLength(4);
    expect(traces.map((t) => t.finish)).toEqual(['eos', 'eos', 'eos', 'max_chunks']);
    expect(traces.map((t) => t.chunks.length)).toEqual([1, 2, 3, 4]);
    expect(traces.map((t) => t.thinkingTokens)).toEqual([5, 12, 14, 20]);
    // Chunk 2 of trace 1 (hand-written): q [7] ⊕ y₁[0:2] ⊕ last 4 of y₁.
    expect(calls[1][0]).toEqual({ trace: 1, chunk: 1, context: [7, 2000, 2001, 2004, 2005, 2006, 2007], maxNewTokens: 4 });
    assertInvariants(tracing, queries, calls, traces);
  });

  it('carries m − h tokens in the released variant', async () => {
    const released = { ...tracing, carry: 'released' as const };
    const { generate, calls } = scriptedGenerator([script(0, 30)]);
    const traces = await traceBatch(generate, [[5]], released, STOP);
    expect(calls[1][0].context).toEqual([5, 1000, 1001, 1006, 1007]);
    expect(calls[2][0].context).toEqual([5, 1000, 1001, 1010, 1011]);
    assertInvariants(released, [[5]], calls, traces);
  });

  it('is LongCoT with one chunk of the whole budget', async () => {
    const longCot = longCotTracing(20);
    const { generate, calls } = scriptedGenerator([script(0, 25), script(1, 9)]);
    const traces = await traceBatch(generate, [[3], [4]], longCot, STOP);
    expect(calls).toHaveLength(1);
    expect(calls[0].map((r) => r.maxNewTokens)).toEqual([20, 20]);
    expect(traces.map((t) => [t.finish, t.thinkingTokens])).toEqual([
      ['max_chunks', 20],
      ['eos', 9],
    ]);
  });

  it('holds invariants 1–4 and 8 for random C, m, h, I, carry variants and trace lengths', async () => {
    const caseArb = fc
      .record({
        C: fc.integer({ min: 1, max: 24 }),
        mShare: fc.double({ min: 0, max: 0.999, noNaN: true }),
        hShare: fc.double({ min: 0, max: 1, noNaN: true }),
        I: fc.integer({ min: 1, max: 7 }),
        carry: fc.constantFrom('paper' as const, 'released' as const),
        lengths: fc.array(fc.integer({ min: 1, max: 220 }), { minLength: 1, maxLength: 5 }),
        queryLengths: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 5, maxLength: 5 }),
      })
      .map(({ C, mShare, hShare, I, carry, lengths, queryLengths }) => {
        const m = Math.floor(mShare * C);
        const h = Math.floor(hShare * (carry === 'paper' ? C : m));
        const tracingCase: DelethinkTracing = { chunkTokens: C, carryoverTokens: m, headTokens: h, maxChunks: I, carry };
        return {
          tracing: tracingCase,
          lengths,
          queries: lengths.map((_, k) => Array.from({ length: queryLengths[k] }, (_, i) => 100 + 10 * k + i)),
        };
      });
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ tracing: t, lengths, queries }) => {
        const scripts = lengths.map((n, k) => script(k, n));
        const { generate, calls } = scriptedGenerator(scripts);
        const traces = await traceBatch(generate, queries, t, STOP);
        assertInvariants(t, queries, calls, traces);
        // A trace within the budget ends with EOS and is reproduced token for token.
        traces.forEach((trace, k) => {
          const thinking = trace.chunks.flatMap((c) => c.response);
          if (lengths[k] <= thinkingBudget(t)) {
            expect(trace.finish).toBe('eos');
            expect(thinking).toEqual(scripts[k]);
          } else expect(thinking).toEqual(scripts[k].slice(0, thinkingBudget(t)));
        });
        // SFT chunking of the same tokens equals what the tracer produced.
        traces.forEach((trace, k) => {
          const demo = delethinkDemonstrationSegments(queries[k], scripts[k], t, { stopToken: STOP });
          const live = chunkSegments(trace.chunks, { stopToken: STOP });
          expect(demo.map((s) => [s.tokens, s.isOutput, s.turn])).toEqual(live.map((s) => [s.tokens, s.isOutput, s.turn]));
        });
      }),
      { numRuns: 150 },
    );
  });

  it('checks the generator contract', async () => {
    const bad =
      (result: { tokens: number[]; logProbs: number[]; stopped: boolean }): ChunkGenerator =>
      async (requests) =>
        requests.map(() => result);
    const t = { ...tracing, chunkTokens: 3, carryoverTokens: 1 };
    await expect(traceBatch(bad({ tokens: [5, 6], logProbs: [0, 0], stopped: false }), [[1]], t, STOP)).rejects.toThrow(
      /without the stop token/,
    );
    await expect(traceBatch(bad({ tokens: [STOP, 6], logProbs: [0, 0], stopped: true }), [[1]], t, STOP)).rejects.toThrow(
      /not the last token/,
    );
    await expect(traceBatch(bad({ tokens: [5, 6, 7, 8], logProbs: [0, 0, 0, 0], stopped: false }), [[1]], t, STOP)).rejects.toThrow(
      /exceed maxNewTokens/,
    );
    await expect(traceBatch(bad({ tokens: [5, 6, 7], logProbs: [0], stopped: false }), [[1]], t, STOP)).rejects.toThrow(/log-probs/);
    await expect(traceBatch(async () => [], [[1]], t, STOP)).rejects.toThrow(/0 results for 1 requests/);
    await expect(traceBatch(bad({ tokens: [STOP], logProbs: [0], stopped: true }), [[]], t, STOP)).rejects.toThrow(/query 0 is empty/);
  });

  it('reports finished traces before the next chunk and cancels the rest on a stop request', async () => {
    const { generate, calls } = scriptedGenerator([script(0, 3), script(1, 30), script(2, 30)]);
    const events: string[] = [];
    let polls = 0;
    const traces = await traceBatch(generate, [[1], [2], [3]], tracing, STOP, {
      shouldStop: () => {
        events.push(`poll ${polls}`);
        return ++polls > 2;
      },
      onTraceFinished: (k, trace) => {
        events.push(`finished ${k} after ${trace.chunks.length}`);
      },
    });
    expect(events).toEqual(['poll 0', 'finished 0 after 1', 'poll 1', 'poll 2']);
    expect(calls).toHaveLength(2);
    expect(traces.map((t) => [t.finish, t.chunks.length])).toEqual([
      ['eos', 1],
      ['cancelled', 2],
      ['cancelled', 2],
    ]);
  });
});

describe('chunk segments', () => {
  it('mark the prompt (carryover included) as input and the response as output with the chunk index', () => {
    const segments = chunkSegments(
      [
        { prompt: [1, 2], response: [10, 11], logProbs: [-0.5, -0.25] },
        { prompt: [1, 10, 11], response: [12, EOT_ID], logProbs: [-1, -2] },
      ],
      { trainOnStopToken: false },
    );
    expect(segments).toEqual([
      { tokens: [1, 2, 10, 11], isOutput: [0, 0, 1, 1], logProbs: [0, 0, -0.5, -0.25], turn: [-1, -1, 0, 0] },
      { tokens: [1, 10, 11, 12, EOT_ID], isOutput: [0, 0, 0, 1, 0], logProbs: [0, 0, 0, -1, 0], turn: [-1, -1, -1, 1, 1] },
    ]);
  });

  it('give a one-chunk demonstration one segment, and drop tokens beyond the cap', () => {
    const t: DelethinkTracing = { chunkTokens: 4, carryoverTokens: 2, headTokens: 1, maxChunks: 2, carry: 'paper' };
    expect(delethinkDemonstrationSegments([9], [5, 6, EOT_ID], t)).toHaveLength(1);
    const capped = delethinkDemonstrationSegments([9], [5, 6, 7, 8, 20, 21, 22, 23, EOT_ID], t);
    expect(capped.map((s) => s.tokens)).toEqual([
      [9, 5, 6, 7, 8],
      [9, 5, 7, 8, 20, 21],
    ]);
  });
});
