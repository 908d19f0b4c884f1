import { describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { baselineScores, evaluateMemory, instanceMetric, meanScore } from '../../../envs/memalpha/baselines.js';
import { runHeuristicWriter } from '../../../envs/memalpha/heuristic.js';
import { ExtractiveReader } from '../../../envs/memalpha/reader.js';
import { countTokens } from '../../../envs/memalpha/tokens.js';
import type { MemalphaInstance } from '../../../envs/memalpha/types.js';

const instance: MemalphaInstance = {
  id: 'hand',
  source: 'squad',
  chunks: ['Mira Kolt lives in Tavon. The road was quiet.', 'Bo Rin works as a pilot.', 'Day 3: Mira Kolt moved to Brel.'],
  questions: [
    { question: 'Where does Mira Kolt live?', answers: ['Brel'] },
    { question: 'What does Bo Rin work as?', answers: ['pilot'] },
  ],
};
const reader = new ExtractiveReader();
const predictions = (scores: { prediction: string }[]) => scores.map((s) => s.prediction);

describe('raw-input baselines', () => {
  it('long-context over the whole input answers with the stale fact (it never resolves the change)', async () => {
    const scores = await baselineScores(instance, 'long-context', reader, { contextTokens: 10_000 });
    expect(predictions(scores)).toEqual(['Tavon', 'pilot']);
    expect(scores.map((s) => s.score)).toEqual([0, 1]);
    expect(meanScore(scores)).toBe(0.5);
  });

  it('long-context sees only the last N tokens', async () => {
    const lastChunk = countTokens(instance.chunks[2]);
    const scores = await baselineScores(instance, 'long-context', reader, { contextTokens: lastChunk });
    expect(predictions(scores)).toEqual(['Day 3 moved Brel', '']);
    expect(scores.map((s) => s.score)).toEqual([1, 0]);
  });

  it('RAG-top-k retrieves raw chunks with the same BM25: top-1 finds the shorter change report, top-2 the stale fact too', async () => {
    const top1 = await baselineScores(instance, 'rag-top-k', reader, { ragTopK: 1 });
    expect(predictions(top1)).toEqual(['Day 3 moved Brel', 'pilot']);
    expect(meanScore(top1)).toBe(1);
    const top2 = await baselineScores(instance, 'rag-top-k', reader, { ragTopK: 2 });
    expect(predictions(top2)).toEqual(['Tavon', 'pilot']);
  });
});

describe('memory evaluation', () => {
  it('scores the scripted writer’s memory, which restated the changed fact', async () => {
    const { memory } = runHeuristicWriter(
      instance,
      { memory: {}, prompt: { maxPromptTokens: 1024, viewEntries: 5, callSyntax: 'line', instructions: false } },
      new Rng(1),
      0,
    );
    expect(memory.semantic.map((e) => e.content)).toEqual(['Mira Kolt lives in Brel.', 'Bo Rin works as a pilot.']);
    const scores = await evaluateMemory(instance, memory, reader);
    expect(scores).toEqual([
      { question: 'Where does Mira Kolt live?', answers: ['Brel'], prediction: 'Brel', metric: 'substring', score: 1 },
      { question: 'What does Bo Rin work as?', answers: ['pilot'], prediction: 'pilot', metric: 'substring', score: 1 },
    ]);
  });

  it('an instance’s own metric wins over its source’s', () => {
    expect(instanceMetric(instance)).toBe('substring');
    expect(instanceMetric({ ...instance, metric: 'exact_label' })).toBe('exact_label');
    expect(instanceMetric({ ...instance, source: 'mine' }, { mine: 'keyword_hit' })).toBe('keyword_hit');
  });
});
