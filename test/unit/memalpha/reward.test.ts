import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  answerKeywords,
  exactLabelMatch,
  groupAdvantages,
  keywordHitRatio,
  memalphaReward,
  metricForSource,
  normalizeAnswer,
  qaScore,
  r1QaAccuracy,
  r2ToolSuccess,
  r3Compression,
  r4ContentValidity,
  substringMatch,
  type CallOutcome,
} from '../../../rewards/memalpha.js';

const write = (validity: number): CallOutcome => ({ kind: 'write', validity });
const failed: CallOutcome = { kind: 'failed' };
const skipped: CallOutcome = { kind: 'skipped' };
const del: CallOutcome = { kind: 'delete' };

describe('QA metrics (doc-comment examples)', () => {
  it('normalises like SQuAD', () => {
    expect(normalizeAnswer('The  Eiffel-Tower!')).toBe('eiffeltower');
    expect(normalizeAnswer('An apple, a pear')).toBe('apple pear');
  });

  it('substring, keyword hit, exact label', () => {
    expect(substringMatch('She lives in Tavon.', ['tavon'])).toBe(1);
    expect(substringMatch('She lives in Tavon.', ['Brel'])).toBe(0);
    expect(substringMatch('anything', ['', 'the'])).toBe(0);
    expect(keywordHitRatio('Mira found the lantern in Brel.', ['Mira, lantern, Tavon, Brel'])).toBe(0.75);
    expect(keywordHitRatio('x', [' , '])).toBe(0);
    expect(answerKeywords(['Mira, mira , Brel'])).toEqual(['mira', 'brel']);
    expect(exactLabelMatch(' Sport.', ['sport'])).toBe(1);
    expect(exactLabelMatch('sport or music', ['sport'])).toBe(0);
    expect(qaScore('exact_label', 'music', ['sport'])).toBe(0);
    expect(qaScore('llm_judge', 'x', ['y'], 1)).toBe(1);
    expect(qaScore('llm_judge', 'it is y', ['y'])).toBe(1);
  });

  it('picks the metric per source, overrides first, case-insensitive', () => {
    expect(metricForSource('BookSum')).toBe('keyword_hit');
    expect(metricForSource('squad')).toBe('substring');
    expect(metricForSource('TREC-coarse')).toBe('exact_label');
    expect(metricForSource('LongMemEval')).toBe('llm_judge');
    expect(metricForSource('synthetic/ttl')).toBe('exact_label');
    expect(metricForSource('my-data')).toBe('substring');
    expect(metricForSource('my-data', { 'My-Data': 'exact_label' })).toBe('exact_label');
  });
});

describe('reward terms (doc-comment examples)', () => {
  it('r1 is the mean QA score', () => {
    expect(r1QaAccuracy([1, 0, 1, 1])).toBe(0.75);
    expect(r1QaAccuracy([])).toBe(0);
  });

  it('r2 counts writes and deletes as successes; skipped duplicates and failures are not; no calls → 0', () => {
    expect(r2ToolSuccess([write(1), write(0), failed])).toBeCloseTo(2 / 3, 12);
    expect(r2ToolSuccess([del, skipped])).toBe(0.5);
    expect(r2ToolSuccess([])).toBe(0);
  });

  it('r3 is 1 − |M|/Σ|c| exactly, unclipped', () => {
    expect(r3Compression(50, 200)).toBe(0.75);
    expect(r3Compression(300, 200)).toBe(-0.5);
    expect(r3Compression(10, 0)).toBe(0);
  });

  it('r4 averages validity over all calls; deletes score 0 unless switched on', () => {
    expect(r4ContentValidity([write(1), write(0), failed])).toBeCloseTo(1 / 3, 12);
    expect(r4ContentValidity([del, skipped])).toBe(0);
    expect(r4ContentValidity([del, skipped], true)).toBe(0.5);
    expect(r4ContentValidity([])).toBe(0);
  });
});

describe('memalphaReward (worked example of the doc comment)', () => {
  const outcome = {
    source: 'squad',
    chunks: [
      [write(1), write(0), failed],
      [del, skipped],
    ],
    qaScores: [1, 0, 1, 1],
    memoryTokens: 50,
    inputTokens: 200,
  };
  const paper = { beta: 0.05, gamma: 0.1, scoreDeletes: false, total: 'r1' as const };

  it('gives R_1 = 1.4875, R_2 = 1.2875, total = r1 = 0.75', () => {
    const reward = memalphaReward(outcome, paper);
    expect(reward.turnRewards![0]).toBeCloseTo(1.4875, 12);
    expect(reward.turnRewards![1]).toBeCloseTo(1.2875, 12);
    expect(reward.total).toBe(0.75);
    expect(reward.parts).toMatchObject({
      r1: 0.75,
      r3: 0.75,
      'qa/squad': 0.75,
      memory_tokens: 50,
      input_tokens: 200,
      calls: 5,
      failed_calls: 1,
      skipped_calls: 1,
      chunks: 2,
    });
    expect(reward.parts.r2_mean).toBeCloseTo(7 / 12, 12);
    expect(reward.parts.r4_mean).toBeCloseTo(1 / 6, 12);
  });

  it('scoreDeletes raises R_2 to 1.3375; total mean-turn is 1.3875', () => {
    expect(memalphaReward(outcome, { ...paper, scoreDeletes: true }).turnRewards![1]).toBeCloseTo(1.3375, 12);
    expect(memalphaReward(outcome, { ...paper, total: 'mean-turn' }).total).toBeCloseTo(1.3875, 12);
  });

  it('keeps r1, r2, r4 in [0, 1], zero r2 / r4 without calls, shared r1 and r3 across chunks (invariants 3, 4)', () => {
    const call = fc.oneof(
      fc.constant(failed),
      fc.constant(skipped),
      fc.constant(del),
      fc.double({ min: 0, max: 1, noNaN: true }).map(write),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(call, { maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }),
        fc.nat(5000),
        fc.integer({ min: 1, max: 5000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (chunks, qaScores, memoryTokens, inputTokens, beta, gamma) => {
          const reward = memalphaReward(
            { source: 's', chunks, qaScores, memoryTokens, inputTokens },
            { beta, gamma, scoreDeletes: false, total: 'r1' },
          );
          const r1 = reward.parts.r1;
          const r3 = reward.parts.r3;
          expect(r3).toBe(1 - memoryTokens / inputTokens);
          expect(r1).toBeGreaterThanOrEqual(0);
          expect(r1).toBeLessThanOrEqual(1);
          expect(reward.turnRewards).toHaveLength(chunks.length);
          chunks.forEach((calls, t) => {
            const r2 = r2ToolSuccess(calls);
            const r4 = r4ContentValidity(calls);
            for (const r of [r2, r4]) expect(r >= 0 && r <= 1).toBe(true);
            if (calls.length === 0) expect([r2, r4]).toEqual([0, 0]);
            // The chunk's reward minus its own terms is the same for every chunk: r1 + β·r3.
            expect(reward.turnRewards![t] - r2 - gamma * r4).toBeCloseTo(r1 + beta * r3, 9);
          });
        },
      ),
    );
  });
});

describe('groupAdvantages (invariant 5)', () => {
  it('doc-comment example', () => {
    const a = groupAdvantages([[1, 3], [2]]);
    expect(a[0][0]).toBeCloseTo(-1 / (1 + 1e-6), 12);
    expect(a[0][1]).toBeCloseTo(1 / (1 + 1e-6), 12);
    expect(a[1]).toEqual([0]);
  });

  it('pools all chunks of all rollouts; advantages have mean 0; all-equal rewards give exactly 0', () => {
    expect(groupAdvantages([[0.1, 0.1, 0.1], [0.1]])).toEqual([[0, 0, 0], [0]]);
    expect(groupAdvantages([[0.7]])).toEqual([[0]]);
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        (rollouts) => {
          const advantages = groupAdvantages(rollouts);
          expect(advantages.map((a) => a.length)).toEqual(rollouts.map((r) => r.length));
          const flat = advantages.flat();
          expect(Math.abs(flat.reduce((a, b) => a + b, 0) / flat.length)).toBeLessThan(1e-6);
        },
      ),
    );
  });
});
