/**
 * `rollout.context: fresh` (Mem-α's per-chunk samples): every turn's context is BOS + the latest
 * observation only, every turn is its own segment, the env's per-turn rewards travel with the
 * trajectory, and scripted demonstrations become one row per (observation, turn) pair exactly as a live
 * turn would see it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import type { Env, EnvDefinition } from '../../../envs/types.js';
import { selectBackend } from '../../../models/backend.js';
import { BOS_ID, ByteTokenizer, EOT_ID } from '../../../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../../models/transformer.js';
import { demonstrationSegments, runGroup, type EpisodeLimits } from '../../../rollout/episode.js';

let policy: TransformerPolicy;
const tokenizer = new ByteTokenizer();

beforeAll(async () => {
  await selectBackend('wasm');
  policy = new TransformerPolicy(
    resolvePolicyConfig({
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      maxSeqLen: 128,
      ropeTheta: 10000,
      normEps: 1e-5,
      qkvBias: false,
      initStd: 0.02,
      vocabSize: 260,
    }),
    3,
  );
});
afterAll(() => policy.dispose());

const limits: EpisodeLimits = {
  maxTurns: 10,
  maxTokensPerTurn: 4,
  maxObservationTokens: 64,
  maxContextTokens: 40,
  temperature: 1,
  trainOnEndOfTurn: true,
  episodeRetries: 0,
  context: 'fresh',
};

/** Three chunks "chunk 1".."chunk 3"; per-turn rewards 0.1, 0.2, 0.3. */
const chunked: EnvDefinition<Record<string, never>> = {
  name: 'test/chunked',
  taskCount: () => 1,
  create: (): Env => {
    let t = 0;
    return {
      reset: () => 'chunk 1',
      step: () => {
        t += 1;
        return t < 3 ? { observation: `chunk ${t + 1}`, done: false } : { observation: 'ignored final text', done: true };
      },
      score: () => ({ total: 1, parts: {}, turnRewards: [0.1, 0.2, 0.3] }),
    };
  },
};

describe('fresh context', () => {
  it('gives each turn BOS + its observation only, one segment per turn, with the per-turn rewards', async () => {
    const outcome = await runGroup(policy, {
      env: chunked,
      envOptions: {},
      task: { split: 'train', index: 0, seed: 0 },
      groupSize: 2,
      limits,
      rngs: [new Rng(1), new Rng(2)],
      rolloutIds: ['r/0', 'r/1'],
      groupId: 'g',
      policyVersion: 0,
    });
    for (const t of outcome.trajectories) {
      expect(t.segments).toHaveLength(3);
      expect(t.reward.turnRewards).toEqual([0.1, 0.2, 0.3]);
      t.segments.forEach((seg, i) => {
        const prompt = [BOS_ID, ...tokenizer.encode(`chunk ${i + 1}`)];
        expect(seg.tokens.slice(0, prompt.length)).toEqual(prompt);
        expect(seg.isOutput.slice(0, prompt.length).every((m) => m === 0)).toBe(true);
        // Everything after the prompt is this turn's output: no earlier chunk, no final observation.
        const out = seg.tokens.slice(prompt.length);
        expect(out.length).toBeGreaterThan(0);
        expect(out.length).toBeLessThanOrEqual(limits.maxTokensPerTurn);
        expect(seg.isOutput.slice(prompt.length).every((m) => m === 1)).toBe(true);
        expect(seg.turn.slice(prompt.length).every((x) => x === i)).toBe(true);
        expect(tokenizer.decode(seg.tokens.filter((x) => x < 256))).not.toContain(`chunk ${i === 0 ? 2 : 1}`);
      });
    }
  });

  it('truncates a long observation so that a full turn still fits the context', async () => {
    const long: EnvDefinition<Record<string, never>> = {
      ...chunked,
      create: () => ({
        reset: () => 'x'.repeat(500),
        step: () => ({ observation: '', done: true }),
        score: () => ({ total: 0, parts: {}, turnRewards: [0] }),
      }),
    };
    const outcome = await runGroup(policy, {
      env: long,
      envOptions: {},
      task: { split: 'train', index: 0, seed: 0 },
      groupSize: 1,
      limits,
      rngs: [new Rng(1)],
      rolloutIds: ['r/0'],
      groupId: 'g',
      policyVersion: 0,
    });
    const seg = outcome.trajectories[0].segments[0];
    expect(seg.tokens.length).toBeLessThanOrEqual(limits.maxContextTokens);
    expect(tokenizer.decode(seg.tokens.filter((x) => x < 256))).toContain('[observation truncated');
  });

  it('turns a demonstration into one row per (observation, turn) pair, as the live turn sees it', () => {
    const rows = demonstrationSegments(
      {
        turns: [
          { role: 'env', text: 'c1' },
          { role: 'policy', text: 'ab' },
          { role: 'env', text: 'c2' },
          { role: 'policy', text: 'd' },
          { role: 'env', text: 'end' },
        ],
      },
      limits,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0].tokens).toEqual([BOS_ID, ...tokenizer.encode('c1'), ...tokenizer.encode('ab'), EOT_ID]);
    expect(rows[0].isOutput).toEqual([0, 0, 0, 1, 1, 1]);
    expect(rows[1].tokens).toEqual([BOS_ID, ...tokenizer.encode('c2'), ...tokenizer.encode('d'), EOT_ID]);
    expect(rows[1].isOutput).toEqual([0, 0, 0, 1, 1]);
    expect(rows[1].turn.slice(3)).toEqual([1, 1]);
    // Multi-turn context keeps the whole transcript in one row.
    expect(
      demonstrationSegments(
        {
          turns: [
            { role: 'env', text: 'c1' },
            { role: 'policy', text: 'ab' },
          ],
        },
        { ...limits, context: 'multi-turn' },
      ),
    ).toHaveLength(1);
  });
});
