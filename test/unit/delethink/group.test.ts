/**
 * `runDelethinkGroup` with a real (tiny, random) transformer and recording environments: chunk segments
 * built exactly from the tracing rule, sampler log-probs that the learner's recomputation reproduces,
 * the reward computed once per trace from the last chunk (invariant 7), env failures retried with a fresh
 * env, the straggler stop, and a clear RangeError when a chunk cannot fit the model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import type { Env, EnvDefinition, TaskRef } from '../../../envs/types.js';
import { selectBackend } from '../../../models/backend.js';
import { BOS_ID, ByteTokenizer, EOT_ID } from '../../../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../../models/transformer.js';
import { chunkPrompt, finalWindowTokens, runDelethinkGroup, type DelethinkTracing } from '../../../rollout/delethink.js';
import type { EpisodeLimits, GroupSpec } from '../../../rollout/episode.js';

let policy: TransformerPolicy;
const tokenizer = new ByteTokenizer();

beforeAll(async () => {
  await selectBackend('wasm');
  policy = new TransformerPolicy(
    resolvePolicyConfig({
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      maxSeqLen: 48,
      ropeTheta: 10000,
      normEps: 1e-5,
      qkvBias: false,
      initStd: 0.02,
      vocabSize: 260,
    }),
    11,
  );
});

afterAll(() => policy.dispose());

const limits: EpisodeLimits = {
  maxTurns: 1,
  maxTokensPerTurn: 1,
  maxObservationTokens: 1,
  maxContextTokens: 48,
  temperature: 1,
  trainOnEndOfTurn: true,
  episodeRetries: 1,
};

const tracing: DelethinkTracing = { chunkTokens: 6, carryoverTokens: 3, headTokens: 2, maxChunks: 3, carry: 'paper' };
const QUESTION = 'Q?\n';

/** Everything the envs of a test saw, per created instance. */
interface EnvLog {
  resets: TaskRef[];
  steps: string[];
  scores: number;
  closed: boolean;
}

/** An env that records its calls; `failScore(instance)` makes that instance's score() throw. */
function recordingEnv(logs: EnvLog[], failScore: (instance: number) => boolean = () => false): EnvDefinition<Record<string, never>> {
  return {
    name: 'test/recording',
    taskCount: () => 1,
    create: (): Env => {
      const instance = logs.length;
      const log: EnvLog = { resets: [], steps: [], scores: 0, closed: false };
      logs.push(log);
      return {
        reset: (task) => {
          log.resets.push(task);
          return QUESTION;
        },
        step: (text) => {
          log.steps.push(text);
          return { observation: 'ignored', done: false };
        },
        score: () => {
          log.scores++;
          if (failScore(instance)) throw new Error('scorer unavailable');
          return { total: log.steps[0].length / 100, parts: { length: log.steps[0].length } };
        },
        close: () => {
          log.closed = true;
        },
      };
    },
  };
}

function spec<O>(env: EnvDefinition<O>, over: Partial<GroupSpec<O>> = {}): GroupSpec<O> {
  const K = over.groupSize ?? 3;
  return {
    env,
    envOptions: {} as O,
    task: { split: 'train', index: 0, seed: 1 },
    groupSize: K,
    limits,
    rngs: Array.from({ length: K }, (_, k) => new Rng(100 + k)),
    rolloutIds: Array.from({ length: K }, (_, k) => `job/0/0/0/${k}`),
    groupId: 'job/0/0/0',
    policyVersion: 3,
    ...over,
  };
}

describe('runDelethinkGroup', () => {
  it('returns one segment per chunk, built by the tracing rule, with log-probs the learner reproduces', async () => {
    const logs: EnvLog[] = [];
    const finished: number[] = [];
    const outcome = await runDelethinkGroup(policy, spec(recordingEnv(logs), { onFinished: (k) => void finished.push(k) }), tracing);
    expect(outcome.trajectories.map((t) => t.rolloutId)).toEqual(['job/0/0/0/0', 'job/0/0/0/1', 'job/0/0/0/2']);
    expect(outcome.cancelled).toEqual([]);
    expect(finished.sort()).toEqual([0, 1, 2]);
    const query = [BOS_ID, ...tokenizer.encode(QUESTION)];
    let generated = 0;
    for (const t of outcome.trajectories) {
      expect(t.policyVersion).toBe(3);
      expect(t.turns).toBe(t.segments.length);
      const chunks = t.segments.map((s) => ({
        prompt: s.tokens.filter((_, i) => s.isOutput[i] === 0),
        response: s.tokens.filter((_, i) => s.isOutput[i] === 1),
      }));
      chunks.forEach((chunk, l) => {
        const segment = t.segments[l];
        // The prompt comes first, then the response; the prompt is exactly x_l.
        expect(segment.tokens).toEqual([...chunk.prompt, ...chunk.response]);
        expect(chunk.prompt).toEqual(chunkPrompt(query, chunks[0].response, l === 0 ? undefined : chunks[l - 1].response, tracing));
        // Budgets C = 6, then C − m = 3; only a last chunk that sampled EOT may stop short.
        const budget = l === 0 ? 6 : 3;
        if (l < chunks.length - 1 || !chunk.response.includes(EOT_ID)) expect(chunk.response.length).toBe(budget);
        else expect(chunk.response.length).toBeLessThanOrEqual(budget);
        expect(segment.turn).toEqual(segment.tokens.map((_, i) => (i < chunk.prompt.length ? -1 : l)));
        generated += chunk.response.length;
      });
      const last = chunks[chunks.length - 1].response;
      expect(t.finishReason).toBe(last[last.length - 1] === EOT_ID ? 'done' : 'max_turns');
      if (t.finishReason === 'max_turns') expect(t.turns).toBe(tracing.maxChunks);
      // Sampler log-probs equal the learner's recomputation on each chunk's own context.
      for (const segment of t.segments) {
        const scored = policy.logProbs({ tokens: Int32Array.from(segment.tokens), batchSize: 1, seqLen: segment.tokens.length });
        const recomputed = scored.dataSync();
        scored.dispose();
        segment.tokens.forEach((_, i) => {
          if (segment.isOutput[i]) expect(Math.abs(segment.logProbs[i] - recomputed[i])).toBeLessThan(1e-4);
          else expect(segment.logProbs[i]).toBe(0);
        });
      }
    }
    expect(outcome.generatedTokens).toBe(generated);
    // Invariant 7: per trace one reset, one step with the last chunk's window, one score; envs closed.
    expect(logs).toHaveLength(3);
    outcome.trajectories.forEach((t, k) => {
      const responses = t.segments.map((s) => s.tokens.filter((_, i) => s.turn[i] >= 0));
      expect(logs[k].resets).toEqual([{ split: 'train', index: 0, seed: 1 }]);
      expect(logs[k].steps).toEqual([
        tokenizer.decode(
          finalWindowTokens(
            responses.map((response) => ({ response })),
            tracing,
          ),
        ),
      ]);
      expect(logs[k].scores).toBe(1);
      expect(logs[k].closed).toBe(true);
      expect(t.reward.total).toBeCloseTo(logs[k].steps[0].length / 100, 12);
    });
  });

  it('retries a trace whose env fails with a fresh env, then fails the group when retries run out', async () => {
    const logs: EnvLog[] = [];
    const outcome = await runDelethinkGroup(policy, spec(recordingEnv(logs, (instance) => instance === 1)), tracing);
    expect(outcome.trajectories).toHaveLength(3);
    expect(outcome.trajectories.map((t) => t.retries)).toEqual([0, 1, 0]);
    expect(logs).toHaveLength(4);
    expect(logs.every((log) => log.closed)).toBe(true);
    expect(logs[3].scores).toBe(1);

    const failing: EnvLog[] = [];
    const attempt = runDelethinkGroup(
      policy,
      spec(
        recordingEnv(failing, () => true),
        { groupSize: 2 },
      ),
      tracing,
    );
    await expect(attempt).rejects.toThrow(EnvError);
    await expect(
      runDelethinkGroup(
        policy,
        spec(
          recordingEnv([], () => true),
          { groupSize: 1 },
        ),
        tracing,
      ),
    ).rejects.toThrow(/failed after 1 retries: scorer unavailable/);
    expect(failing.every((log) => log.closed)).toBe(true);
  });

  it('resets each member with its own task when memberTasks is given', async () => {
    const logs: EnvLog[] = [];
    const memberTasks = [0, 1].map((index) => ({ split: 'eval', index, seed: 4 }));
    const outcome = await runDelethinkGroup(policy, spec(recordingEnv(logs), { groupSize: 2, memberTasks }), tracing);
    expect(outcome.trajectories).toHaveLength(2);
    expect(logs.map((log) => log.resets)).toEqual(memberTasks.map((task) => [task]));
  });

  it('cancels every running trace when the straggler stop fires', async () => {
    const logs: EnvLog[] = [];
    let polls = 0;
    const outcome = await runDelethinkGroup(policy, spec(recordingEnv(logs), { shouldStop: () => ++polls > 1 }), tracing);
    expect(polls).toBe(2);
    expect(outcome.trajectories).toEqual([]);
    expect(outcome.cancelled).toEqual([0, 1, 2]);
    expect(outcome.generatedTokens).toBe(18);
    expect(logs.every((log) => log.closed && log.steps.length === 0 && log.scores === 0)).toBe(true);
  });

  it('refuses a tracing whose chunks do not fit maxSeqLen, naming both numbers', async () => {
    const logs: EnvLog[] = [];
    const tooLong = { ...tracing, chunkTokens: 44, carryoverTokens: 20 };
    await expect(runDelethinkGroup(policy, spec(recordingEnv(logs)), tooLong)).rejects.toThrow(/needs up to 50 tokens .* maxSeqLen is 48/);
    expect(logs.every((log) => log.closed)).toBe(true);
  });
});
