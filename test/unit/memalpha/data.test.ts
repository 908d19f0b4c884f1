import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { generateInstance, type GeneratorOptions } from '../../../envs/memalpha/data/generate.js';
import { loadInstancesFile, parseInstances } from '../../../envs/memalpha/data/load.js';
import { parseChangeSentence, parseFactSentence } from '../../../envs/memalpha/data/relations.js';
import { countTokens } from '../../../envs/memalpha/tokens.js';
import { CATEGORIES, type Category } from '../../../envs/memalpha/types.js';
import { REPO } from '../../helpers/services.js';

const generator: GeneratorOptions = {
  maxChunkTokens: 256,
  factsPerChunk: 2,
  fillerPerChunk: 2,
  questionsPerInstance: 4,
  classes: 3,
  examplesPerChunk: 3,
  exampleWords: 4,
  labelNoise: 0.3,
  eventsPerChunk: 1,
  changeFraction: 0.5,
  changeDelay: 2,
};
const make = (category: Category, seed: number, chunks = 4, options = generator) =>
  generateInstance({ category, chunks, seed, label: `t/${seed}` }, options);

describe('generators', () => {
  it('are deterministic per seed and differ across seeds', () => {
    for (const category of CATEGORIES) {
      expect(make(category, 5)).toEqual(make(category, 5));
      expect(make(category, 5)).not.toEqual(make(category, 6));
      expect(make(category, 5)).toMatchObject({ id: `${category}/t/5`, source: `synthetic/${category}`, category });
    }
  });

  it('keep every chunk within maxChunkTokens, with the requested number of chunks, long ones included', () => {
    for (const category of CATEGORIES) {
      for (const chunks of [1, 4, 40]) {
        for (let seed = 0; seed < 5; seed++) {
          const instance = make(category, seed, chunks);
          expect(instance.chunks).toHaveLength(chunks);
          for (const chunk of instance.chunks) expect(countTokens(chunk)).toBeLessThanOrEqual(generator.maxChunkTokens);
          expect(instance.questions.length).toBeGreaterThan(0);
        }
      }
    }
  });

  it('refuse a chunk size too small for the statements, naming the knob', () => {
    expect(() => make('ar', 1, 4, { ...generator, maxChunkTokens: 64, factsPerChunk: 6 })).toThrow(ConfigError);
    expect(() => make('ar', 1, 4, { ...generator, maxChunkTokens: 64, factsPerChunk: 6 })).toThrow(/raise maxChunkTokens/);
  });

  it('accurate retrieval: every question asks a stated fact whose answer is in the text', () => {
    for (let seed = 0; seed < 20; seed++) {
      const instance = make('ar', seed);
      const text = instance.chunks.join(' ');
      for (const qa of instance.questions) {
        expect(text).toContain(qa.answers[0]);
        const facts = text
          .split(/(?<=\.)\s+/)
          .map(parseFactSentence)
          .filter((f) => f !== undefined);
        expect(facts.some((f) => f!.relation.question(f!.subject) === qa.question && f!.value === qa.answers[0])).toBe(true);
      }
    }
  });

  it('conflict resolution: answers are the latest value, and the stale value is stated first', () => {
    let changedQuestions = 0;
    for (let seed = 0; seed < 20; seed++) {
      const instance = make('cr', seed, 6);
      const sentences = instance.chunks.flatMap((c) => c.split(/(?<=\.)\s+/));
      for (const qa of instance.questions) {
        // Replay the text: the latest statement about the asked attribute is the answer.
        let latest: string | undefined;
        let changes = 0;
        for (const sentence of sentences) {
          const fact = parseFactSentence(sentence);
          const change = parseChangeSentence(sentence);
          const found = fact ?? change;
          if (found && found.relation.question(found.subject) === qa.question) {
            latest = found.value;
            if (change) changes++;
          }
        }
        expect(latest).toBe(qa.answers[0]);
        if (changes > 0) changedQuestions++;
      }
    }
    expect(changedQuestions).toBeGreaterThan(20);
  });

  it('test-time learning: labelled examples in the chunks, questions labelled with one of them', () => {
    const instance = make('ttl', 3);
    const labels = new Set(instance.chunks.flatMap((c) => [...c.matchAll(/label: (\w+)/g)].map((m) => m[1])));
    expect(labels.size).toBeGreaterThan(1);
    for (const qa of instance.questions) {
      expect(qa.question.startsWith('Classify: ')).toBe(true);
      expect(labels.has(qa.answers[0])).toBe(true);
    }
  });

  it('long-range understanding: one summary question whose keywords all occur in the story', () => {
    const instance = make('lru', 2, 8);
    expect(instance.questions).toHaveLength(1);
    expect(instance.questions[0].question).toMatch(/^Summarize the story of [A-Z][a-z]+ [A-Z][a-z]+\.$/);
    const text = instance.chunks.join(' ');
    for (const keyword of instance.questions[0].answers[0].split(', ')) expect(text).toContain(keyword);
    expect(instance.chunks[0].startsWith('This is the story of ')).toBe(true);
  });
});

describe('Mem-α file loader', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'horizon-memalpha-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = { data_source: 'squad', chunks: ['a b', 'c d'], questions_and_answers: [{ question: 'q?', answer: 'a', evidence_idx: 0 }] };

  it('reads JSONL (blank lines skipped), JSON arrays, string-encoded question lists and answer lists', () => {
    const text = `${JSON.stringify(good)}\n\n${JSON.stringify({ ...good, instance_id: 7, questions_and_answers: JSON.stringify([{ question: 'x?', answer: ['y', 2] }]), metric: 'exact_label' })}\n`;
    const instances = parseInstances(text, 'data.jsonl');
    expect(instances).toEqual([
      { id: 'data.jsonl#1', source: 'squad', chunks: ['a b', 'c d'], questions: [{ question: 'q?', answers: ['a'] }] },
      { id: '7', source: 'squad', metric: 'exact_label', chunks: ['a b', 'c d'], questions: [{ question: 'x?', answers: ['y', '2'] }] },
    ]);
    expect(parseInstances(JSON.stringify([good, good]), 'all.json').map((i) => i.id)).toEqual(['all.json#0', 'all.json#1']);
  });

  it('names the file, the line and the field of every problem', () => {
    const bad = (instance: unknown) => `${JSON.stringify(good)}\n${JSON.stringify(instance)}\n`;
    expect(() => parseInstances(bad({ ...good, chunks: [] }), 'd.jsonl')).toThrow('d.jsonl line 2: chunks: needs at least one chunk');
    expect(() => parseInstances(bad({ ...good, chunks: ['ok', ''] }), 'd.jsonl')).toThrow(
      'd.jsonl line 2: chunks.1: chunks must be non-empty strings',
    );
    expect(() => parseInstances(bad({ ...good, questions_and_answers: [{ question: 'q' }] }), 'd.jsonl')).toThrow(
      'd.jsonl line 2: questions_and_answers.0.answer: must be a string, a number or a non-empty list of strings',
    );
    expect(() => parseInstances(bad({ ...good, questions_and_answers: 'not json' }), 'd.jsonl')).toThrow(
      /line 2: questions_and_answers: a string here must hold the JSON list/,
    );
    expect(() => parseInstances(bad({ ...good, data_source: undefined }), 'd.jsonl')).toThrow(/line 2: data_source: /);
    expect(() => parseInstances(bad({ ...good, metric: 'bleu' }), 'd.jsonl')).toThrow(/line 2: metric: /);
    expect(() => parseInstances(`${JSON.stringify(good)}\n{"chunks": [`, 'd.jsonl')).toThrow(
      /d\.jsonl line 2: not valid JSON .*one instance object per line/,
    );
    expect(() => parseInstances('[1]', 'a.json')).toThrow(/a\.json item 0: \(instance\): /);
    expect(() => parseInstances('\n\n', 'e.jsonl')).toThrow('e.jsonl: no instances found');
  });

  it('loads a file, caches it until it changes, and names a missing file', () => {
    const file = path.join(dir, 'one.jsonl');
    writeFileSync(file, `${JSON.stringify(good)}\n`);
    const first = loadInstancesFile(file);
    expect(loadInstancesFile(file)).toBe(first);
    writeFileSync(file, `${JSON.stringify(good)}\n${JSON.stringify(good)}\n`);
    expect(loadInstancesFile(file)).toHaveLength(2);
    expect(() => loadInstancesFile(path.join(dir, 'missing.jsonl'))).toThrow(/missing\.jsonl cannot be read/);
  });

  it('loads the example file shipped in examples/data', () => {
    const instances = loadInstancesFile(path.join(REPO, 'examples/data/memalpha-sample.jsonl'));
    expect(instances.map((i) => i.source)).toEqual(['squad', 'trec-coarse', 'booksum', 'longmemeval']);
    expect(instances.every((i) => i.chunks.length >= 2 && i.questions.length >= 1)).toBe(true);
  });
});
