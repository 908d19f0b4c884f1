/**
 * In-process evaluation: episode counts, the env's summary and baselines by hand, and the right-trim of
 * a Delethink trace to a thinking budget (docs/delethink.md, "Tracing").
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../configs/resolve.js';
import { selectBackend } from '../../../models/backend.js';
import { BYTE_TOKENIZER_VOCAB_SIZE, ByteTokenizer, EOT_ID } from '../../../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../../models/transformer.js';
import type { Trajectory } from '../../../rollout/trajectory.js';
import { evaluatePolicy, trimmedAnswerText } from '../../../trainer/evaluate.js';
import { REPO } from '../../helpers/services.js';

const tokenizer = new ByteTokenizer();
let policy: TransformerPolicy;
const config = resolveConfig(
  {
    env: { module: path.join(REPO, 'test/fixtures/plugins/parity.ts') },
    model: { dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 64 },
    rollout: { maxTokensPerTurn: 6, maxTurns: 1 },
  },
  { configDir: REPO },
);

beforeAll(async () => {
  await selectBackend('wasm');
  policy = new TransformerPolicy(resolvePolicyConfig({ ...config.model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE }), 1);
});
afterAll(() => policy.dispose());

describe('evaluatePolicy', () => {
  it('runs tasks × samples episodes on the test split and adds the env summary and baselines', async () => {
    const result = await evaluatePolicy(policy, config, { samples: 2, batchSize: 7 });
    expect(result.split).toBe('test');
    expect(result.tasks).toBe(10);
    expect(result.policy.episodes).toBe(20);
    expect(result.policy.summary.episodes_seen).toBe(20);
    expect(result.policy.successRate).toBeGreaterThanOrEqual(0);
    expect(result.policy.successRate).toBeLessThanOrEqual(1);
    // Baselines, by hand: the oracle solves all 10, "always even" the 5 even tasks, of which it solves all.
    expect(result.baselines.oracle).toMatchObject({ episodes: 10, rewardMean: 1, successRate: 1 });
    expect(result.baselines['always-even']).toMatchObject({ episodes: 10, rewardMean: 0.5, successRate: 0.5, summary: { even_solved: 1 } });
    expect(result.budgets).toBeUndefined();
  });

  it('honours --tasks and an unknown split is a clear error', async () => {
    expect((await evaluatePolicy(policy, config, { tasks: 3, baselines: false })).policy.episodes).toBe(3);
    await expect(evaluatePolicy(policy, config, { split: 'nope' })).rejects.toThrow(/no tasks in split "nope"/);
  });
});

describe('trimmedAnswerText', () => {
  // Prompt tokens carry turn −1, response tokens the chunk index (as the tracer writes them).
  const seg = (chunk: number, prompt: string, response: string, eot = false) => {
    const p = tokenizer.encode(prompt);
    const r = [...tokenizer.encode(response), ...(eot ? [EOT_ID] : [])];
    return {
      tokens: [...p, ...r],
      isOutput: [...p.map(() => 0 as const), ...r.map(() => 1 as const)],
      logProbs: [...p, ...r].map(() => 0),
      turn: [...p.map(() => -1), ...r.map(() => chunk)],
    };
  };
  const trace = { segments: [seg(0, 'q', 'aaaa'), seg(1, 'q+carry', 'bbbb'), seg(2, 'q+carry', 'cc=7', true)] } as unknown as Trajectory;
  // Carryover m = 2 (paper variant): the reward window is the last 2 tokens of the previous chunk + the last response.
  const tracing = { chunkTokens: 4, carryoverTokens: 2, headTokens: 0, maxChunks: 3, carry: 'paper' as const };

  it("cuts the responses at the budget (end-of-turn counts) and reads the last chunk's window", () => {
    expect(trimmedAnswerText(trace, 100, tracing)).toBe('bbcc=7'); // fits: EOT is not text
    expect(trimmedAnswerText(trace, 13, tracing)).toBe('bbcc=7');
    expect(trimmedAnswerText(trace, 11, tracing)).toBe('bbcc='); // cut before the answer digit
    expect(trimmedAnswerText(trace, 6, tracing)).toBe('aabb');
    expect(trimmedAnswerText(trace, 4, tracing)).toBe('aaaa');
  });
});
