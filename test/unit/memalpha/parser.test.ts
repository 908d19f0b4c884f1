import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatToolCall, formatToolCalls, parseToolCalls } from '../../../envs/memalpha/parser.js';
import type { MemoryType, ParsedCall, ToolCall } from '../../../envs/memalpha/types.js';

const calls = (parsed: ParsedCall[]) => parsed.map((p) => (p.ok ? p.call : { error: p.error }));

describe('line syntax', () => {
  it('parses every form, several per response, in order', () => {
    const response = [
      'insert semantic: Mira Kolt lives in Tavon.',
      'insert episodic: Day 3: Mira Kolt found the lantern in Brel.',
      '',
      'update core: Story of Mira Kolt: a baker.',
      'update semantic s3: Mira Kolt lives in Brel.',
      'delete episodic e2',
      'DELETE Core',
      'insert semantic_memory: With the suffix.',
    ].join('\n');
    expect(calls(parseToolCalls(response))).toEqual([
      { tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Mira Kolt lives in Tavon.' },
      { tool: 'new_memory_insert', memory_type: 'episodic_memory', content: 'Day 3: Mira Kolt found the lantern in Brel.' },
      { tool: 'memory_update', memory_type: 'core_memory', new_content: 'Story of Mira Kolt: a baker.' },
      { tool: 'memory_update', memory_type: 'semantic_memory', new_content: 'Mira Kolt lives in Brel.', memory_id: 's3' },
      { tool: 'memory_delete', memory_type: 'episodic_memory', memory_id: 'e2' },
      { tool: 'memory_delete', memory_type: 'core_memory' },
      { tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'With the suffix.' },
    ]);
  });

  it('keeps calls the memory will refuse (core insert, list update without id) as parsed calls', () => {
    expect(calls(parseToolCalls('insert core: x y\nupdate semantic: x y\ndelete episodic'))).toEqual([
      { tool: 'new_memory_insert', memory_type: 'core_memory', content: 'x y' },
      { tool: 'memory_update', memory_type: 'semantic_memory', new_content: 'x y' },
      { tool: 'memory_delete', memory_type: 'episodic_memory' },
    ]);
  });

  it('turns every other line into one malformed call with the reason', () => {
    const parsed = parseToolCalls(
      [
        'Sure, here are the calls:',
        'ins semantic: x',
        'insert working: x',
        'insert semantic s1: x',
        'insert semantic',
        'update core',
        'update core c1: x',
        'delete semantic s1: x',
        'delete core c1',
      ].join('\n'),
    );
    expect(parsed.map((p) => p.ok)).toEqual(Array(9).fill(false));
    expect(parsed.map((p) => (p.ok ? '' : p.error))).toEqual([
      'not a tool call; write `insert|update|delete TYPE [ID][: TEXT]`',
      'unknown verb "ins"; use insert, update or delete',
      'unknown memory type "working"; use core, semantic or episodic',
      'insert takes no id: `insert TYPE: TEXT`',
      'insert needs its text after `:`',
      'update needs the new text after `:`',
      'update core takes no id: `update core: TEXT`',
      'delete takes no text: `delete TYPE ID`',
      'delete core takes no id',
    ]);
    expect(parsed[1].source).toBe('ins semantic: x');
  });

  it('ignores blank lines, code fences and tool_call tags', () => {
    expect(calls(parseToolCalls('```\n\n<tool_call>delete core</tool_call>\n```json\n'))).toEqual([
      { tool: 'memory_delete', memory_type: 'core_memory' },
    ]);
    expect(parseToolCalls('')).toEqual([]);
    expect(parseToolCalls('  \n\n ')).toEqual([]);
  });
});

describe('JSON syntax', () => {
  it('parses one object per line, arrays, objects spanning lines and {name, arguments}', () => {
    const response = [
      '{"tool":"new_memory_insert","memory_type":"semantic_memory","content":"Mira lives in Tavon."}',
      '[{"tool":"memory_delete","memory_type":"episodic_memory","memory_id":"e1"}, {"tool":"memory_delete","memory_type":"core_memory"}],',
      '{',
      '  "tool": "memory_update",',
      '  "memory_type": "semantic_memory", "memory_id": 7,',
      '  "new_content": "a {braced} \\"quoted\\" text"',
      '}',
      '{"name":"new_memory_insert","arguments":"{\\"memory_type\\":\\"episodic_memory\\",\\"content\\":\\"Day 1: x\\"}"}',
      '{"function":{"name":"memory_delete","arguments":{"memory_type":"semantic","memory_id":"s2"}}}',
    ].join('\n');
    expect(calls(parseToolCalls(response))).toEqual([
      { tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Mira lives in Tavon.' },
      { tool: 'memory_delete', memory_type: 'episodic_memory', memory_id: 'e1' },
      { tool: 'memory_delete', memory_type: 'core_memory' },
      { tool: 'memory_update', memory_type: 'semantic_memory', new_content: 'a {braced} "quoted" text', memory_id: '7' },
      { tool: 'new_memory_insert', memory_type: 'episodic_memory', content: 'Day 1: x' },
      { tool: 'memory_delete', memory_type: 'semantic_memory', memory_id: 's2' },
    ]);
  });

  it('reports bad JSON, missing keys and bad enums as malformed calls', () => {
    const parsed = parseToolCalls(
      [
        '{"tool":"new_memory_insert","memory_type":"semantic_memory","content":"x"',
        '{"tool":"new_memory_insert" "memory_type":"semantic_memory"}',
        '{"tool":"memory_move","memory_type":"semantic_memory"}',
        '{"tool":"new_memory_insert","memory_type":"working_memory","content":"x"}',
        '{"tool":"new_memory_insert","memory_type":"semantic_memory"}',
        '{"tool":"memory_update","memory_type":"semantic_memory","memory_id":"s1"}',
        '{"tool":"memory_delete","memory_type":"semantic_memory","memory_id":[1]}',
        '[1]',
        '{"name":"memory_delete","arguments":"not json"}',
        '{"tool":"new_memory_insert","memory_type":"semantic_memory","content":"ok"}',
      ].join('\n'),
    );
    expect(parsed.map((p) => p.ok)).toEqual([false, false, false, false, false, false, false, false, false, true]);
    const errors = parsed.map((p) => (p.ok ? '' : p.error));
    expect(errors[0]).toContain('unbalanced JSON');
    expect(errors[1]).toContain('invalid JSON');
    expect(errors[2]).toBe('"tool" must be one of new_memory_insert, memory_update, memory_delete, got "memory_move"');
    expect(errors[3]).toContain('"memory_type" must be one of');
    expect(errors[4]).toBe('new_memory_insert needs a string "content", got nothing');
    expect(errors[5]).toContain('needs a string "new_content"');
    expect(errors[6]).toContain('"memory_id" must be a string');
    expect(errors[7]).toBe('a JSON tool call must be an object');
    expect(errors[8]).toContain('not JSON');
  });
});

describe('formatting', () => {
  it('writes one line per call in either syntax', () => {
    const list: ToolCall[] = [
      { tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Mira\nlives in Tavon.' },
      { tool: 'memory_update', memory_type: 'semantic_memory', memory_id: 's3', new_content: 'x y' },
      { tool: 'memory_delete', memory_type: 'core_memory' },
    ];
    expect(formatToolCalls(list, 'line')).toBe('insert semantic: Mira lives in Tavon.\nupdate semantic s3: x y\ndelete core');
    expect(formatToolCall(list[1], 'json')).toBe(
      '{"tool":"memory_update","memory_type":"semantic_memory","memory_id":"s3","new_content":"x y"}',
    );
  });

  it('round-trips: parsing a formatted call gives the call back (property)', () => {
    const type = fc.constantFrom<MemoryType>('core_memory', 'semantic_memory', 'episodic_memory');
    const text = fc
      .string({ minLength: 1, maxLength: 40 })
      .map((s) => s.replace(/\s+/g, ' ').trim())
      .filter((s) => s.length > 0);
    const id = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    const call: fc.Arbitrary<ToolCall> = fc.oneof(
      fc.record({ tool: fc.constant('new_memory_insert' as const), memory_type: type, content: text }),
      fc.record({
        tool: fc.constant('memory_update' as const),
        memory_type: fc.constant<MemoryType>('semantic_memory'),
        new_content: text,
        memory_id: id,
      }),
      fc.record({ tool: fc.constant('memory_update' as const), memory_type: fc.constant<MemoryType>('core_memory'), new_content: text }),
      fc.record({ tool: fc.constant('memory_delete' as const), memory_type: fc.constant<MemoryType>('episodic_memory'), memory_id: id }),
    );
    fc.assert(
      fc.property(fc.array(call, { maxLength: 6 }), fc.constantFrom('line' as const, 'json' as const), (list, syntax) => {
        expect(calls(parseToolCalls(formatToolCalls(list, syntax)))).toEqual(list);
      }),
    );
  });
});

describe('fuzzing', () => {
  const fragment = fc.constantFrom(
    '{',
    '}',
    '[',
    ']',
    '"',
    '\\',
    ':',
    '\n',
    'insert ',
    'update ',
    'delete ',
    'semantic',
    'core',
    'episodic ',
    ' s1',
    '"tool"',
    '"memory_type"',
    '"new_memory_insert"',
    '"semantic_memory"',
    '<tool_call>',
    '```',
    ',',
    '\u0000',
    '😀',
  );
  const responses = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.array(fragment, { maxLength: 80 }).map((parts) => parts.join('')),
    fc.json(),
  );

  it('never throws, and every call is parsed or malformed with a reason and a bounded source', () => {
    fc.assert(
      fc.property(responses, (response) => {
        const parsed = parseToolCalls(response);
        for (const call of parsed) {
          expect(call.source.length).toBeLessThanOrEqual(201);
          if (!call.ok) expect(call.error.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('stays linear on a long unbalanced response', () => {
    const response = '{\n'.repeat(5_000);
    const started = performance.now();
    const parsed = parseToolCalls(response);
    expect(parsed).toHaveLength(5_000);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
