/**
 * The group runner with a real (tiny, random) transformer and scripted environments: LOOP invariant 9
 * (turn and per-turn token caps), token bookkeeping, observation truncation, malformed output as an
 * observation, env failures retried with a fresh env, and the whole group failing when retries run out.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { guessEnv } from '../../../envs/toy/guess.js';
import type { Env, EnvDefinition } from '../../../envs/types.js';
import { selectBackend } from '../../../models/backend.js';
import { BOS_ID, ByteTokenizer, EOT_ID } from '../../../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../../models/transformer.js';
import { demonstrationSegment, observationTokens, runGroup, type EpisodeLimits, type GroupSpec } from '../../../rollout/episode.js';

let policy: TransformerPolicy;
const tokenizer = new ByteTokenizer();

beforeAll(async () => {
  await selectBackend('wasm');
  policy = new TransformerPolicy(
    resolvePolicyConfig({
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      maxSeqLen: 256,
      ropeTheta: 10000,
      normEps: 1e-5,
      qkvBias: false,
      initStd: 0.02,
      vocabSize: 260,
    }),
    5,
  );
});

afterAll(() => policy.dispose());

const limits: EpisodeLimits = {
  maxTurns: 4,
  maxTokensPerTurn: 3,
  maxObservationTokens: 64,
  maxContextTokens: 256,
  temperature: 1,
  trainOnEndOfTurn: true,
  episodeRetries: 1,
};

function spec<O>(env: EnvDefinition<O>, options: O, over: Partial<GroupSpec<O>> = {}): GroupSpec<O> {
  const K = over.groupSize ?? 3;
  return {
    env,
    envOptions: options,
    task: { split: 'train', index: 0, seed: 1 },
    groupSize: K,
    limits,
    rngs: Array.from({ length: K }, (_, k) => new Rng(100 + k)),
    rolloutIds: Array.from({ length: K }, (_, k) => `job/0/0/0/${k}`),
    groupId: 'job/0/0/0',
    policyVersion: 7,
    ...over,
  };
}

/** An env that never ends by itself and echoes a fixed reply; records the actions it saw. */
function endlessEnv(reply: string, seen: string[] = []): EnvDefinition<Record<string, never>> {
  return {
    name: 'test/endless',
    taskCount: () => 1,
    create: (): Env => ({
      reset: () => 'Say something.\n',
      step: (action) => {
        seen.push(action);
        return { observation: reply, done: false };
      },
      score: () => ({ total: 0.5, parts: { constant: 0.5 } }),
    }),
  };
}

describe('runGroup', () => {
  it('respects the turn cap and the per-turn token cap (invariant 9), with exact token bookkeeping', async () => {
    const outcome = await runGroup(policy, spec(endlessEnv('ok\n'), {}));
    expect(outcome.trajectories).toHaveLength(3);
    expect(outcome.cancelled).toEqual([]);
    for (const t of outcome.trajectories) {
      expect(t.turns).toBe(4);
      expect(t.finishReason).toBe('max_turns');
      expect(t.policyVersion).toBe(7);
      const [seg] = t.segments;
      expect(seg.tokens[0]).toBe(BOS_ID);
      expect(seg.tokens.length).toBe(seg.isOutput.length);
      for (let turn = 0; turn < 4; turn++) {
        const outputs = seg.tokens.filter((_, i) => seg.turn[i] === turn && seg.isOutput[i] === 1);
        expect(outputs.length).toBeGreaterThanOrEqual(1);
        expect(outputs.length).toBeLessThanOrEqual(3);
        if (outputs.length < 3) expect(outputs.at(-1)).toBe(EOT_ID); // a short turn ended on the stop token
      }
      // Output tokens carry negative log-probs; prompt and environment tokens carry none.
      seg.isOutput.forEach((m, i) => (m ? expect(seg.logProbs[i]).toBeLessThan(0) : expect(seg.logProbs[i]).toBe(0)));
      // The environment's replies appear verbatim as non-policy tokens.
      expect(tokenizer.decode(seg.tokens.filter((_, i) => !seg.isOutput[i]))).toBe('Say something.\n' + 'ok\n'.repeat(4));
      expect(t.reward).toEqual({ total: 0.5, parts: { constant: 0.5 } });
    }
    expect(outcome.generatedTokens).toBe(outcome.trajectories.reduce((a, t) => a + t.segments[0].isOutput.filter(Boolean).length, 0));
  });

  it('ends an episode before a turn could overflow the context', async () => {
    const tight = { ...limits, maxTurns: 100, maxContextTokens: 40 };
    const outcome = await runGroup(policy, spec(endlessEnv('a reply of some length\n'), {}, { limits: tight }));
    for (const t of outcome.trajectories) {
      expect(t.finishReason).toBe('max_context');
      expect(t.segments[0].tokens.length).toBeLessThanOrEqual(40);
    }
  });

  it('turns random model output into observations of the real toy env, never exceptions', async () => {
    const outcome = await runGroup(
      policy,
      spec(guessEnv, guessEnv.optionsSchema!.parse({ maxNumber: 16, maxGuesses: 3 }), { limits: { ...limits, maxTurns: 10 } }),
    );
    for (const t of outcome.trajectories) {
      expect(t.finishReason).toBe('done');
      expect(t.turns).toBeLessThanOrEqual(3);
      expect(t.reward.parts.guesses).toBe(t.turns);
    }
  });

  it('truncates a huge observation with a note', async () => {
    const outcome = await runGroup(
      policy,
      spec(endlessEnv('x'.repeat(10_000)), {}, { groupSize: 2, limits: { ...limits, maxTurns: 1, maxObservationTokens: 50 } }),
    );
    const text = tokenizer.decode(
      outcome.trajectories[0].segments[0].tokens.filter((_, i) => !outcome.trajectories[0].segments[0].isOutput[i]),
    );
    expect(text).toMatch(/\[observation truncated: \d+ more tokens\]\n$/);
    expect(observationTokens('x'.repeat(10_000), 50)).toHaveLength(50);
  });

  it('retries a failed episode with a fresh env and keeps the group', async () => {
    let creates = 0;
    const flaky: EnvDefinition<Record<string, never>> = {
      name: 'test/flaky',
      taskCount: () => 1,
      create: () => {
        const n = creates++;
        return {
          reset: () => 'go\n',
          step: () => {
            if (n === 0) throw new Error('simulated crash');
            return { observation: 'done\n', done: true };
          },
          score: () => ({ total: 1, parts: {} }),
        };
      },
    };
    const outcome = await runGroup(policy, spec(flaky, {}, { groupSize: 2 }));
    expect(outcome.trajectories).toHaveLength(2);
    expect(outcome.trajectories.map((t) => t.retries).sort()).toEqual([0, 1]);
    expect(creates).toBe(3);
  });

  it('fails the whole group when an episode runs out of retries (never scores a crash as zero)', async () => {
    const broken: EnvDefinition<Record<string, never>> = {
      name: 'test/broken',
      taskCount: () => 1,
      create: () => ({
        reset: () => 'go\n',
        step: () => {
          throw new Error('always crashes');
        },
        score: () => ({ total: 0, parts: {} }),
      }),
    };
    await expect(runGroup(policy, spec(broken, {}))).rejects.toThrow(EnvError);
    await expect(runGroup(policy, spec(broken, {}))).rejects.toThrow(/failed after 1 retries: always crashes/);
  });

  it('cancels the episodes still running when told to stop, and scores none of them', async () => {
    let polls = 0;
    const outcome = await runGroup(policy, spec(endlessEnv('ok\n'), {}, { shouldStop: () => ++polls > 2 }));
    expect(outcome.trajectories).toHaveLength(0);
    expect(outcome.cancelled).toEqual([0, 1, 2]);
  });

  it('leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    await runGroup(policy, spec(endlessEnv('ok\n'), {}));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('demonstrationSegment', () => {
  it('tokenises a demonstration exactly like a live episode: BOS, env tokens 0, policy turns + EOT as 1', () => {
    const seg = demonstrationSegment(
      {
        turns: [
          { role: 'env', text: 'Hi\n' },
          { role: 'policy', text: '8' },
          { role: 'env', text: 'higher\n' },
          { role: 'policy', text: '12' },
        ],
      },
      { ...limits, maxTokensPerTurn: 4 },
    );
    const enc = (s: string) => tokenizer.encode(s);
    expect(seg.tokens).toEqual([BOS_ID, ...enc('Hi\n'), ...enc('8'), EOT_ID, ...enc('higher\n'), ...enc('12'), EOT_ID]);
    expect(seg.isOutput).toEqual([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(seg.turn).toEqual([-1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  });

  it('masks the end-of-turn token when trainOnEndOfTurn is off', () => {
    const seg = demonstrationSegment(
      {
        turns: [
          { role: 'env', text: 'a' },
          { role: 'policy', text: 'b' },
        ],
      },
      { ...limits, trainOnEndOfTurn: false },
    );
    expect(seg.isOutput).toEqual([0, 0, 1, 0]);
  });
});
