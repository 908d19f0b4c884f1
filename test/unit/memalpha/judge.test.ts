import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmAnswerJudge, LlmContentJudge, RuleContentJudge, contentProblem, type ContentJudgeItem } from '../../../envs/memalpha/judge.js';
import type { ChatEndpoint } from '../../../envs/memalpha/openai.js';
import type { MemoryType } from '../../../envs/memalpha/types.js';
import { startFakeOpenAi, type FakeOpenAi } from './fake-openai.js';

const item = (memoryType: MemoryType, content: string): ContentJudgeItem => ({
  tool: memoryType === 'core_memory' ? 'memory_update' : 'new_memory_insert',
  memoryType,
  content,
});

describe('rule-based content judge', () => {
  it('doc-comment examples', () => {
    expect(contentProblem(item('episodic_memory', 'Day 3: Mira Kolt found the lantern in Brel.'))).toBeUndefined();
    expect(contentProblem(item('episodic_memory', 'Mira Kolt found the lantern.'))).toBe('episodic entry states no time');
    expect(contentProblem(item('core_memory', 'I will remember this.'))).toBe('meta-talk');
  });

  it('accepts knowledge, timed events and a summary core', () => {
    for (const ok of [
      item('semantic_memory', 'Mira Kolt lives in Tavon.'),
      item('semantic_memory', 'zorp dalik => label: music'),
      item('semantic_memory', 'Mira Kolt was born in 1987.'),
      item('episodic_memory', 'On 2024-05-01 Mira moved.'),
      item('episodic_memory', 'At 09:30 the train left.'),
      item('episodic_memory', 'Monday: Bo called Mira.'),
      item('core_memory', 'Story of Mira Kolt, a baker from Tavon.'),
    ]) {
      expect(contentProblem(ok)).toBeUndefined();
    }
  });

  it('rejects placeholders, meta-talk, one-word content and misplaced events', () => {
    const cases: [ContentJudgeItem, string][] = [
      [item('core_memory', '   '), 'empty'],
      [item('core_memory', 'None'), 'placeholder'],
      [item('semantic_memory', 'TODO'), 'placeholder'],
      [item('semantic_memory', '<fact>'), 'placeholder'],
      [item('semantic_memory', 'FACT'), 'placeholder'],
      [item('core_memory', '[truncated]'), 'placeholder'],
      [item('semantic_memory', '...'), 'placeholder'],
      [item('semantic_memory', 'No new information.'), 'placeholder'],
      [item('semantic_memory', 'Memory updated with the facts.'), 'meta-talk'],
      [item('core_memory', 'Nothing to store from this chunk'), 'meta-talk'],
      [item('semantic_memory', 'Tavon'), 'fewer than two words'],
      [
        item('semantic_memory', 'Day 4: Mira moved to Brel.'),
        'semantic entry opens with a time stamp (an event belongs in episodic memory)',
      ],
    ];
    for (const [input, problem] of cases) expect(contentProblem(input), input.content).toBe(problem);
    expect(contentProblem(item('semantic_memory', 'It was not that cold.'))).toBeUndefined();
  });

  it('scores 1 for valid and 0 for invalid items, in order', async () => {
    expect(
      await new RuleContentJudge().judge([item('semantic_memory', 'Mira lives in Tavon.'), item('episodic_memory', 'Mira left.')]),
    ).toEqual([1, 0]);
  });
});

describe('LLM judges against a fake OpenAI-compatible server', () => {
  let server: FakeOpenAi;
  let endpoint: ChatEndpoint;

  beforeAll(async () => {
    server = await startFakeOpenAi();
    endpoint = {
      baseUrl: server.baseUrl,
      model: 'judge-model',
      timeoutMs: 2000,
      retries: 0,
      retryDelayMs: 1,
      maxTokens: 8,
      temperature: 0,
      concurrency: 3,
    };
  });
  afterAll(async () => {
    await server.close();
  });

  it('content judge: VALID → 1, INVALID → 0 (not confused by the substring), anything else → 0', async () => {
    server.handle((body) => {
      const entry = String(body.messages[1].content);
      if (entry.includes('Entry: good')) return { content: 'VALID' };
      if (entry.includes('Entry: bad')) return { content: 'invalid.' };
      return { content: 'maybe' };
    });
    const judged = await new LlmContentJudge(endpoint).judge([
      item('semantic_memory', 'good one'),
      item('episodic_memory', 'bad one'),
      item('core_memory', 'other'),
    ]);
    expect(judged).toEqual([1, 0, 0]);
    const request = server.requests.find((r) => String(r.body.messages[1].content).includes('Entry: bad'))!;
    expect(request.body.messages[1].content).toContain(
      'Memory: episodic_memory\nA valid entry is an event together with the time it happened',
    );
  });

  it('answer judge: CORRECT → 1, WRONG → 0', async () => {
    server.handle((body) => ({ content: String(body.messages[1].content).includes('Generated answer: Tavon') ? 'CORRECT' : 'WRONG' }));
    const judged = await new LlmAnswerJudge(endpoint).judge([
      { question: 'Where?', answers: ['Tavon'], prediction: 'Tavon' },
      { question: 'Where?', answers: ['Tavon'], prediction: 'Brel' },
    ]);
    expect(judged).toEqual([1, 0]);
  });
});
