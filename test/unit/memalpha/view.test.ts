import { describe, expect, it } from 'vitest';
import { WriterEpisode } from '../../../envs/memalpha/episode.js';
import { MemoryStore } from '../../../envs/memalpha/store.js';
import { countTokens } from '../../../envs/memalpha/tokens.js';
import type { MemalphaInstance } from '../../../envs/memalpha/types.js';
import { chunkCutNote, renderChunkPrompt, type PromptOptions } from '../../../envs/memalpha/view.js';

const options: PromptOptions = { maxPromptTokens: 4096, viewEntries: 5, callSyntax: 'line', instructions: false };

function storeWith(semantic: number, episodic: number): MemoryStore {
  const store = new MemoryStore();
  for (let i = 1; i <= semantic; i++)
    store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: `fact number ${i}` });
  for (let i = 1; i <= episodic; i++)
    store.execute({ tool: 'new_memory_insert', memory_type: 'episodic_memory', content: `Day ${i}: event ${i}` });
  return store;
}

describe('chunk prompt', () => {
  it('shows the full core, the 5 most recent entries of each list with "showing k of N", then the chunk', () => {
    const store = storeWith(7, 2);
    store.execute({ tool: 'memory_update', memory_type: 'core_memory', new_content: 'The hero is Mira.' });
    const prompt = renderChunkPrompt(store.snapshot(), 'Chunk text here.', { index: 2, count: 4 }, options);
    expect(prompt.text).toBe(
      [
        '[core]',
        'The hero is Mira.',
        '[semantic memory: showing 5 of 7]',
        's3: fact number 3',
        's4: fact number 4',
        's5: fact number 5',
        's6: fact number 6',
        's7: fact number 7',
        '[episodic memory: showing 2 of 2]',
        'e1: Day 1: event 1',
        'e2: Day 2: event 2',
        '[chunk 3 of 4]',
        'Chunk text here.',
        '[tool calls]',
        '',
      ].join('\n'),
    );
    expect(prompt.tokens).toBe(countTokens(prompt.text));
    expect(prompt.chunkTokensDropped).toBe(0);
  });

  it('starts with the tool description when instructions are on', () => {
    const prompt = renderChunkPrompt(new MemoryStore().snapshot(), 'x', { index: 0, count: 1 }, { ...options, instructions: true });
    expect(prompt.text.startsWith('You are the memory writer.')).toBe(true);
    expect(prompt.text).toContain('insert semantic: FACT');
    expect(prompt.text).toContain('[core]\n(empty)\n');
  });

  it('shrinks the view one entry at a time, from the list with longer shown entries, to fit the budget', () => {
    const store = storeWith(5, 5);
    const memory = store.snapshot();
    const full = renderChunkPrompt(memory, 'c', { index: 0, count: 1 }, options);
    // Semantic lines "sN: fact number N" (17 tokens) are shorter than "eN: Day N: event N" (18): episodic gives way first.
    const budget = full.tokens - 1;
    const shrunk = renderChunkPrompt(memory, 'c', { index: 0, count: 1 }, { ...options, maxPromptTokens: budget });
    expect(shrunk.tokens).toBeLessThanOrEqual(budget);
    expect(shrunk.view.semantic.shown).toHaveLength(5);
    expect(shrunk.view.episodic.shown.map((e) => e.id)).toEqual(['e2', 'e3', 'e4', 'e5']);
    expect(shrunk.text).toContain('[episodic memory: showing 4 of 5]');
    for (let budgetTokens = 128; budgetTokens < full.tokens; budgetTokens += 7) {
      const p = renderChunkPrompt(memory, 'c', { index: 0, count: 1 }, { ...options, maxPromptTokens: budgetTokens });
      expect(p.tokens).toBeLessThanOrEqual(budgetTokens);
      expect(p.view.semantic.shown.length + p.view.episodic.shown.length).toBeLessThanOrEqual(10);
    }
  });

  it('cuts the chunk, with a note, only when no entry is left to drop', () => {
    const chunk = 'word '.repeat(100).trim();
    const prompt = renderChunkPrompt(storeWith(3, 0).snapshot(), chunk, { index: 0, count: 1 }, { ...options, maxPromptTokens: 200 });
    expect(prompt.tokens).toBeLessThanOrEqual(200);
    expect(prompt.view.semantic.shown).toHaveLength(0);
    expect(prompt.chunkTokensDropped).toBeGreaterThan(0);
    expect(prompt.chunk.endsWith(chunkCutNote(prompt.chunkTokensDropped))).toBe(true);
    expect(chunk.startsWith(prompt.chunk.slice(0, prompt.chunk.length - chunkCutNote(prompt.chunkTokensDropped).length))).toBe(true);
  });
});

describe('episode prompts (invariant 6)', () => {
  it('never contain earlier chunk text except through memory, and show at most 5 entries per list', () => {
    const instance: MemalphaInstance = {
      id: 'x',
      source: 'test',
      chunks: Array.from({ length: 12 }, (_, i) => `Marker${i}word appears only in chunk ${i}.`),
      questions: [],
    };
    const episode = new WriterEpisode(instance, { memory: {}, prompt: options });
    let t = 0;
    const stored: number[] = [];
    while (!episode.done) {
      const prompt = episode.currentPrompt().text;
      const visible = new Set(stored.slice(-5));
      for (let earlier = 0; earlier < t; earlier++) {
        // Only chunks the writer stored (the even ones) reappear, and only the 5 most recent of them.
        expect(prompt.includes(`Marker${earlier}word`)).toBe(visible.has(earlier));
      }
      expect(prompt).toContain(`Marker${t}word`);
      const listed = prompt.split('\n').filter((line) => /^[se]\d+: /.test(line));
      expect(listed.length).toBeLessThanOrEqual(10);
      episode.apply(t % 2 === 0 ? `insert semantic: Marker${t}word stored.` : 'nothing to store');
      if (t % 2 === 0) stored.push(t);
      t++;
    }
  });
});
