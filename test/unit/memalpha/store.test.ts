import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CORE_TRUNCATION_NOTICE, MemoryStore, capCore, memoryTokens, replayCalls } from '../../../envs/memalpha/store.js';
import { countTokens } from '../../../envs/memalpha/tokens.js';
import type { MemoryType, ToolCall } from '../../../envs/memalpha/types.js';

const insert = (memory_type: MemoryType, content: string): ToolCall => ({ tool: 'new_memory_insert', memory_type, content });
const update = (memory_type: MemoryType, new_content: string, memory_id?: string): ToolCall =>
  memory_id === undefined
    ? { tool: 'memory_update', memory_type, new_content }
    : { tool: 'memory_update', memory_type, new_content, memory_id };
const remove = (memory_type: MemoryType, memory_id?: string): ToolCall =>
  memory_id === undefined ? { tool: 'memory_delete', memory_type } : { tool: 'memory_delete', memory_type, memory_id };

describe('new_memory_insert', () => {
  it('appends to a list with a fresh sequential id and trims the content', () => {
    const store = new MemoryStore();
    expect(store.execute(insert('semantic_memory', '  Mira lives in Tavon. '))).toEqual({
      ok: true,
      skipped: false,
      message: 'inserted s1 into semantic_memory',
      id: 's1',
    });
    expect(store.execute(insert('episodic_memory', 'Day 1: Mira left.'))).toMatchObject({ ok: true, id: 'e1' });
    expect(store.execute(insert('semantic_memory', 'Mira works as a baker.'))).toMatchObject({ ok: true, id: 's2' });
    const memory = store.snapshot();
    expect(memory.semantic.map((e) => [e.id, e.content])).toEqual([
      ['s1', 'Mira lives in Tavon.'],
      ['s2', 'Mira works as a baker.'],
    ]);
    expect(memory.episodic.map((e) => e.id)).toEqual(['e1']);
  });

  it('skips content identical to an entry of the same list and changes nothing (invariant 2)', () => {
    const store = new MemoryStore();
    store.execute(insert('semantic_memory', 'Mira lives in Tavon.'));
    const before = store.snapshot();
    const result = store.execute(insert('semantic_memory', 'Mira lives in Tavon.  '));
    expect(result).toMatchObject({ ok: true, skipped: true });
    expect(store.snapshot()).toEqual(before);
    // The same content in the other list is not a duplicate.
    expect(store.execute(insert('episodic_memory', 'Mira lives in Tavon.'))).toMatchObject({ ok: true, skipped: false });
  });

  it('refuses core, empty content, non-string content and unknown types without changing anything (invariant 1)', () => {
    const store = new MemoryStore();
    store.execute(update('core_memory', 'Mira is the hero.'));
    const before = store.snapshot();
    expect(store.execute(insert('core_memory', 'x y'))).toMatchObject({
      ok: false,
      message: expect.stringContaining('cannot write core_memory'),
    });
    expect(store.execute(insert('semantic_memory', '   '))).toMatchObject({ ok: false, message: expect.stringContaining('non-empty') });
    expect(store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 42 } as unknown as ToolCall)).toMatchObject({
      ok: false,
    });
    expect(store.execute({ tool: 'new_memory_insert', memory_type: 'working_memory', content: 'x' } as unknown as ToolCall)).toMatchObject({
      ok: false,
      message: expect.stringContaining('memory_type must be one of'),
    });
    expect(store.execute({ tool: 'memory_move', memory_type: 'semantic_memory' } as unknown as ToolCall)).toMatchObject({
      ok: false,
      message: expect.stringContaining('unknown tool'),
    });
    expect(store.execute(null as unknown as ToolCall)).toMatchObject({ ok: false });
    expect(store.snapshot()).toEqual(before);
  });
});

describe('memory_update', () => {
  it('replaces the content of a list entry, keeping its id and position', () => {
    const store = new MemoryStore();
    store.execute(insert('semantic_memory', 'a b'));
    store.execute(insert('semantic_memory', 'c d'));
    expect(store.execute(update('semantic_memory', 'e f', 's1'))).toEqual({
      ok: true,
      skipped: false,
      message: 'updated s1 in semantic_memory',
      id: 's1',
    });
    expect(store.snapshot().semantic.map((e) => `${e.id}=${e.content}`)).toEqual(['s1=e f', 's2=c d']);
    // The old content is free again: inserting it is not a duplicate.
    expect(store.execute(insert('semantic_memory', 'a b'))).toMatchObject({ ok: true, skipped: false, id: 's3' });
  });

  it('errors on an unknown id, a missing id, an id of the other list or empty content', () => {
    const store = new MemoryStore();
    store.execute(insert('semantic_memory', 'a b'));
    const before = store.snapshot();
    expect(store.execute(update('semantic_memory', 'x y', 's9'))).toMatchObject({
      ok: false,
      message: 'error: no entry s9 in semantic_memory',
    });
    expect(store.execute(update('semantic_memory', 'x y'))).toMatchObject({
      ok: false,
      message: expect.stringContaining('needs a memory_id'),
    });
    expect(store.execute(update('episodic_memory', 'x y', 's1'))).toMatchObject({ ok: false });
    expect(store.execute(update('semantic_memory', ' ', 's1'))).toMatchObject({ ok: false });
    expect(store.snapshot()).toEqual(before);
  });

  it('rewrites the core, capped at the cap with a truncation notice at a word boundary (invariant 1)', () => {
    const store = new MemoryStore({ coreTokenCap: 32 });
    expect(store.execute(update('core_memory', 'Mira is a baker.'))).toEqual({
      ok: true,
      skipped: false,
      truncated: false,
      message: 'core_memory rewritten',
    });
    const long = 'alpha beta gamma delta epsilon zeta';
    const result = store.execute(update('core_memory', long));
    expect(result).toMatchObject({ ok: true, truncated: true, message: 'core_memory rewritten, truncated from 35 to 28 tokens (cap 32)' });
    expect(store.snapshot().core).toBe('alpha beta gamma [truncated]');
  });

  it('keeps every core within the cap whatever the text (property, invariant 1)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }), fc.integer({ min: 32, max: 128 }), (text, cap) => {
        const store = new MemoryStore({ coreTokenCap: cap });
        store.execute(update('core_memory', text));
        const core = store.snapshot().core;
        expect(countTokens(core)).toBeLessThanOrEqual(cap);
        if (countTokens(text.trim()) > cap) expect(core.endsWith(CORE_TRUNCATION_NOTICE.trim())).toBe(true);
      }),
    );
  });
});

describe('memory_delete', () => {
  it('removes a list entry; its id is never reused', () => {
    const store = new MemoryStore();
    store.execute(insert('episodic_memory', 'Day 1: a.'));
    store.execute(insert('episodic_memory', 'Day 2: b.'));
    expect(store.execute(remove('episodic_memory', 'e1'))).toEqual({
      ok: true,
      skipped: false,
      message: 'deleted e1 from episodic_memory',
      id: 'e1',
    });
    expect(store.execute(insert('episodic_memory', 'Day 1: a.'))).toMatchObject({ id: 'e3' });
    expect(store.snapshot().episodic.map((e) => e.id)).toEqual(['e2', 'e3']);
  });

  it('an unknown id is a success that changes nothing; a missing id is an error', () => {
    const store = new MemoryStore();
    store.execute(insert('semantic_memory', 'a b'));
    const before = store.snapshot();
    expect(store.execute(remove('semantic_memory', 'zz'))).toMatchObject({
      ok: true,
      skipped: false,
      message: 'no entry zz in semantic_memory; nothing deleted',
    });
    expect(store.execute(remove('semantic_memory'))).toMatchObject({ ok: false });
    expect(store.snapshot()).toEqual(before);
  });

  it('clears the core', () => {
    const store = new MemoryStore();
    store.execute(update('core_memory', 'Mira is the hero.'));
    expect(store.execute(remove('core_memory'))).toMatchObject({ ok: true, message: 'core_memory cleared' });
    expect(store.snapshot().core).toBe('');
  });
});

describe('memory size and ids', () => {
  it('|M| counts the core and every content, not the ids', () => {
    const store = new MemoryStore();
    store.execute(update('core_memory', 'abcd'));
    store.execute(insert('semantic_memory', 'é f'));
    store.execute(insert('episodic_memory', 'Day 1'));
    expect(memoryTokens(store.snapshot())).toBe(4 + 4 + 5);
    expect(store.tokens()).toBe(13);
  });

  it('random ids are 4 hex digits, seeded, and widen instead of colliding', () => {
    const a = new MemoryStore({ idScheme: 'random', idSeed: 7 });
    const b = new MemoryStore({ idScheme: 'random', idSeed: 7 });
    for (let i = 0; i < 50; i++) {
      a.execute(insert('semantic_memory', `fact ${i}`));
      b.execute(insert('semantic_memory', `fact ${i}`));
    }
    expect(a.snapshot()).toEqual(b.snapshot());
    expect(a.snapshot().semantic.every((e) => /^[0-9a-f]{4}$/.test(e.id))).toBe(true);
    const many = new MemoryStore({ idScheme: 'random', idSeed: 1 });
    for (let i = 0; i < 70_000; i++) many.execute(insert(i % 2 ? 'semantic_memory' : 'episodic_memory', `f${i}`));
    const ids = [...many.snapshot().semantic, ...many.snapshot().episodic].map((e) => e.id);
    expect(new Set(ids).size).toBe(70_000);
    expect(ids.some((id) => id.length === 8)).toBe(true);
  });

  it('snapshots are deep-frozen copies', () => {
    const store = new MemoryStore();
    store.execute(insert('semantic_memory', 'a b'));
    const memory = store.snapshot();
    expect(Object.isFrozen(memory) && Object.isFrozen(memory.semantic) && Object.isFrozen(memory.semantic[0])).toBe(true);
    store.execute(update('semantic_memory', 'c d', 's1'));
    expect(memory.semantic[0].content).toBe('a b');
  });
});

/** Random tool calls over a small vocabulary, so duplicates, hits and misses all happen. */
const callArbitrary: fc.Arbitrary<ToolCall> = fc.oneof(
  fc.record({
    tool: fc.constant('new_memory_insert' as const),
    memory_type: fc.constantFrom<MemoryType>('core_memory', 'semantic_memory', 'episodic_memory'),
    content: fc.constantFrom('a b', 'c d', 'e f', ' ', 'g h i'),
  }),
  fc.record({
    tool: fc.constant('memory_update' as const),
    memory_type: fc.constantFrom<MemoryType>('core_memory', 'semantic_memory', 'episodic_memory'),
    new_content: fc.constantFrom('a b', 'x y', 'long '.repeat(40)),
    memory_id: fc.constantFrom('s1', 's2', 'e1', 'e3', 'zz'),
  }),
  fc.record({
    tool: fc.constant('memory_delete' as const),
    memory_type: fc.constantFrom<MemoryType>('core_memory', 'semantic_memory', 'episodic_memory'),
    memory_id: fc.constantFrom('s1', 's2', 'e1', 'zz'),
  }),
);

describe('invariants under random call sequences', () => {
  it('ids stay unique, the core stays capped, skipped inserts change nothing, and replay reproduces the memory (invariants 1, 2, 8)', () => {
    fc.assert(
      fc.property(
        fc.array(callArbitrary, { maxLength: 60 }),
        fc.constantFrom('sequential' as const, 'random' as const),
        (calls, idScheme) => {
          const options = { coreTokenCap: 64, idScheme, idSeed: 3 };
          const store = new MemoryStore(options);
          for (const call of calls) {
            const before = store.snapshot();
            const result = store.execute(call);
            const after = store.snapshot();
            if (!result.ok || result.skipped) expect(after).toEqual(before);
            const ids = [...after.semantic, ...after.episodic].map((e) => e.id);
            expect(new Set(ids).size).toBe(ids.length);
            expect(countTokens(after.core)).toBeLessThanOrEqual(64);
          }
          expect(replayCalls(calls, options).snapshot()).toEqual(store.snapshot());
        },
      ),
    );
  });
});

describe('capCore', () => {
  it('worked example of the doc comment', () => {
    expect(capCore('alpha beta gamma delta epsilon zeta', 32)).toBe('alpha beta gamma [truncated]');
  });

  it('cuts a single over-long word between code points', () => {
    const capped = capCore('é'.repeat(40), 32);
    expect(capped).toBe(`${'é'.repeat(10)} [truncated]`);
    expect(countTokens(capped)).toBe(32);
  });
});
