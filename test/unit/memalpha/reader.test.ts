import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceError } from '../../../core/errors.js';
import { evaluateMemory } from '../../../envs/memalpha/baselines.js';
import type { ChatEndpoint } from '../../../envs/memalpha/openai.js';
import {
  Bm25Index,
  ExtractiveReader,
  LlmReader,
  MemoryRetriever,
  bm25Tokens,
  extractiveAnswer,
  readerMessages,
  type Passage,
  type ReaderQuestion,
} from '../../../envs/memalpha/reader.js';
import { MemoryStore } from '../../../envs/memalpha/store.js';
import type { MemalphaInstance } from '../../../envs/memalpha/types.js';
import { startFakeOpenAi, type FakeOpenAi } from './fake-openai.js';

const q = (question: string, metric: ReaderQuestion['metric'] = 'substring'): ReaderQuestion => ({ question, metric, source: 'test' });
const passage = (text: string, recency: number, rank = 0, origin: Passage['origin'] = 'semantic'): Passage => ({
  text,
  origin,
  recency,
  rank,
});

describe('BM25', () => {
  it('tokenises to lowercase word runs', () => {
    expect(bm25Tokens("Mira Kolt's cat, 2024-05!")).toEqual(['mira', 'kolt', 's', 'cat', '2024', '05']);
    expect(bm25Tokens('Zürich ÉCOLE')).toEqual(['zürich', 'école']);
  });

  it('scores exactly BM25 (k1 1.2, b 0.75, idf ln(1 + (N − n + .5)/(n + .5)), |d| = distinct terms)', () => {
    const index = new Bm25Index(['cat dog', 'cat cat bird', 'fish']);
    const idf = (n: number) => Math.log(1 + (3 - n + 0.5) / (n + 0.5));
    // Distinct-term lengths 2, 2, 1 → avgdl 5/3.
    const tf = (f: number, dl: number) => (f * 2.2) / (f + 1.2 * (0.25 + (0.75 * dl) / (5 / 3)));
    const cat = index.search('cat', 10);
    expect(cat.map((h) => h.index)).toEqual([1, 0]);
    expect(cat[0].score).toBeCloseTo(idf(2) * tf(2, 2), 12);
    expect(cat[1].score).toBeCloseTo(idf(2) * tf(1, 2), 12);
    const catBird = index.search('Cat BIRD', 10);
    expect(catBird[0]).toEqual({ index: 1, score: expect.closeTo(idf(2) * tf(2, 2) + idf(1) * tf(1, 2), 12) });
    expect(index.search('cat', 1)).toHaveLength(1);
    expect(index.search('zebra', 5)).toEqual([]);
    expect(new Bm25Index([]).search('cat', 5)).toEqual([]);
  });

  it('breaks ties toward the later document', () => {
    expect(new Bm25Index(['mira lives here', 'mira lives here']).search('mira', 2).map((h) => h.index)).toEqual([1, 0]);
  });
});

describe('memory retrieval', () => {
  it('returns the core, then the top-k of each list separately', () => {
    const store = new MemoryStore();
    store.execute({ tool: 'memory_update', memory_type: 'core_memory', new_content: 'Core text.' });
    for (const fact of ['Mira lives in Tavon.', 'Bo works as a pilot.', 'Mira owns a cat.'])
      store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: fact });
    store.execute({ tool: 'new_memory_insert', memory_type: 'episodic_memory', content: 'Day 2: Mira left Tavon.' });
    // No stemming: "live" does not match "lives"; "tavon" singles out s1.
    const passages = new MemoryRetriever(store.snapshot(), 1).passages('Does Mira live in Tavon?');
    expect(passages.map((p) => [p.origin, p.text, p.rank, p.id])).toEqual([
      ['core', 'Core text.', 0, undefined],
      ['semantic', 'Mira lives in Tavon.', 0, 's1'],
      ['episodic', 'Day 2: Mira left Tavon.', 0, 'e1'],
    ]);
    expect(new MemoryRetriever(store.snapshot(), 5).passages('Mira?').map((p) => p.id)).toEqual([undefined, 's3', 's1', 'e1']);
  });
});

describe('extractive reader', () => {
  it('answers with the best sentence’s words that are not in the question', () => {
    const passages = [passage('Bo Rin works as a pilot. Mira Kolt lives in Tavon.', 1), passage('Mira Kolt works as a baker.', 2)];
    expect(extractiveAnswer(q('Where does Mira Kolt live?'), passages)).toBe('Tavon');
    expect(extractiveAnswer(q('What does Mira Kolt work as?'), passages)).toBe('baker');
    expect(extractiveAnswer(q('Who is Zed?'), passages)).toBe('');
  });

  it('prefers newer information on a tie: the updated fact over the stale one, the core over entries', () => {
    const stale = passage('Mira Kolt lives in Tavon.', 1);
    const fresh = passage('Mira Kolt lives in Brel.', 2);
    expect(extractiveAnswer(q('Where does Mira Kolt live?'), [fresh, stale])).toBe('Brel');
    expect(extractiveAnswer(q('Where does Mira Kolt live?'), [stale, fresh])).toBe('Brel');
    const core = passage('Mira Kolt lives in Osk.', Number.POSITIVE_INFINITY, 0, 'core');
    expect(extractiveAnswer(q('Where does Mira Kolt live?'), [fresh, core])).toBe('Osk');
    // A raw change report shares fewer words with the question than the stale fact does.
    expect(extractiveAnswer(q('Where does Mira Kolt live?'), [stale, passage('Day 4: Mira Kolt moved to Brel.', 3)])).toBe('Tavon');
  });

  it('votes labels by squared overlap for exact-label questions', () => {
    const passages = [
      passage('zorp dalik fenu => label: music', 1),
      passage('zorp miku => label: sport', 2),
      passage('tavo miku => label: sport', 3),
      passage('no label here', 4),
    ];
    // music: 2² = 4 (zorp, fenu); sport: 1² + 0 = 1 (zorp) → music.
    expect(extractiveAnswer(q('Classify: zorp fenu', 'exact_label'), passages)).toBe('music');
    // sport: 1 + 1 = 2 (miku twice); music 0 → sport.
    expect(extractiveAnswer(q('Classify: miku', 'exact_label'), passages)).toBe('sport');
    expect(extractiveAnswer(q('Classify: qqq', 'exact_label'), passages)).toBe('');
  });

  it('hands summary questions every passage', () => {
    expect(extractiveAnswer(q('Summarize.', 'keyword_hit'), [passage('a b.', 1), passage('c d.', 2)])).toBe('a b.\nc d.');
  });
});

describe('the reader never mutates memory (invariant 7)', () => {
  it('leaves the snapshot and the store exactly as they were, and cannot write to them', async () => {
    const store = new MemoryStore();
    store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Mira lives in Tavon.' });
    const memory = store.snapshot();
    const copy = structuredClone(memory);
    const instance: MemalphaInstance = {
      id: 'i',
      source: 'squad',
      chunks: ['x'],
      questions: [{ question: 'Where does Mira live?', answers: ['Tavon'] }],
    };
    const scores = await evaluateMemory(instance, memory, new ExtractiveReader());
    expect(scores[0]).toMatchObject({ prediction: 'Tavon', score: 1, metric: 'substring' });
    expect(memory).toEqual(copy);
    expect(store.snapshot()).toEqual(copy);
    const vandal = {
      name: 'vandal',
      answer: async (_q: ReaderQuestion, passages: readonly Passage[]) => {
        (passages as Passage[]).length = 0;
        (memory.semantic as unknown as { content: string }[])[0].content = 'changed';
        return '';
      },
    };
    await expect(evaluateMemory(instance, memory, vandal)).rejects.toThrow(TypeError);
    expect(store.snapshot()).toEqual(copy);
  });
});

describe('LLM reader against a fake OpenAI-compatible server', () => {
  let server: FakeOpenAi;
  const endpoint = (over: Partial<ChatEndpoint> = {}): ChatEndpoint => ({
    baseUrl: server.baseUrl,
    model: 'reader-model',
    timeoutMs: 2000,
    retries: 2,
    retryDelayMs: 1,
    maxTokens: 32,
    temperature: 0,
    concurrency: 2,
    ...over,
  });

  beforeAll(async () => {
    server = await startFakeOpenAi();
  });
  afterAll(async () => {
    await server.close();
  });

  it('sends the retrieved memory and the question, and returns the trimmed answer', async () => {
    server.handle(() => ({ content: ' Answer: Tavon \n' }));
    const reader = new LlmReader(endpoint());
    const answer = await reader.answer(q('Where does Mira live?'), [
      passage('Core.', Infinity, 0, 'core'),
      passage('Mira lives in Tavon.', 1),
    ]);
    expect(answer).toBe('Tavon');
    const request = server.requests.at(-1)!;
    expect(request.body).toMatchObject({ model: 'reader-model', max_tokens: 32, temperature: 0 });
    expect(request.body.messages[1].content).toBe(
      'Core memory:\n- Core.\n\nSemantic memory:\n- Mira lives in Tavon.\n\nQuestion: Where does Mira live?\nAnswer:',
    );
    expect(readerMessages(q('x'), [])[1].content).toBe('The memory is empty.\n\nQuestion: x\nAnswer:');
  });

  it('retries transient failures (500, 429) and succeeds', async () => {
    const before = server.requests.length;
    server.handle((_body, i) =>
      i - before < 2 ? { status: i - before === 0 ? 500 : 429, body: '{"error":"busy"}' } : { content: 'Brel' },
    );
    expect(await new LlmReader(endpoint()).answer(q('x'), [])).toBe('Brel');
    expect(server.requests.length - before).toBe(3);
  });

  it('does not retry a 401 and says what to check', async () => {
    const before = server.requests.length;
    server.handle(() => ({ status: 401, body: '{"error":"bad key"}' }));
    const error = await new LlmReader(endpoint()).answer(q('x'), []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/answered 401 .*bad key.*check baseUrl, model and apiKeyEnv/);
    expect(server.requests.length - before).toBe(1);
  });

  it('times out, retries, then fails with a clear retryable error', async () => {
    server.handle(() => ({ content: 'late', delayMs: 300 }));
    const error = await new LlmReader(endpoint({ timeoutMs: 50, retries: 1 })).answer(q('x'), []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/failed after 2 attempts: .*did not answer within 50 ms/);
  });

  it('rejects a body that is not a chat completion', async () => {
    server.handle(() => ({ body: '{"result":"Tavon"}' }));
    await expect(new LlmReader(endpoint({ retries: 0 })).answer(q('x'), [])).rejects.toThrow(/returned no chat completion \(choices/);
  });

  it('reports an unreachable server and a bad URL', async () => {
    await expect(new LlmReader(endpoint({ baseUrl: 'http://127.0.0.1:1/v1', retries: 0 })).answer(q('x'), [])).rejects.toThrow(
      /unreachable.*is the server running/,
    );
    expect(() => new LlmReader(endpoint({ baseUrl: 'not a url' }))).toThrow(/is not a URL/);
    expect(() => new LlmReader(endpoint({ apiKeyEnv: 'MEMALPHA_TEST_UNSET_KEY' }))).toThrow(/MEMALPHA_TEST_UNSET_KEY.*is not set/);
  });

  it('sends the API key from the named environment variable', async () => {
    process.env.MEMALPHA_TEST_KEY = 'sk-test';
    server.handle(() => ({ content: 'ok' }));
    await new LlmReader(endpoint({ apiKeyEnv: 'MEMALPHA_TEST_KEY' })).answer(q('x'), []);
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer sk-test');
    delete process.env.MEMALPHA_TEST_KEY;
  });

  it('answers the questions of an instance through evaluateMemory with its concurrency', async () => {
    server.handle((body) => ({ content: String(body.messages[1].content).includes('Mira') ? 'Tavon' : 'unknown' }));
    const store = new MemoryStore();
    store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Mira lives in Tavon.' });
    const instance: MemalphaInstance = {
      id: 'i',
      source: 'squad',
      chunks: ['x'],
      questions: [
        { question: 'Where does Mira live?', answers: ['Tavon'] },
        { question: 'Where does Bo live?', answers: ['Osk'] },
        { question: 'Where is Mira?', answers: ['tavon'] },
      ],
    };
    const scores = await evaluateMemory(instance, store.snapshot(), new LlmReader(endpoint()));
    expect(scores.map((s) => [s.prediction, s.score])).toEqual([
      ['Tavon', 1],
      ['unknown', 0],
      ['Tavon', 1],
    ]);
  });
});
