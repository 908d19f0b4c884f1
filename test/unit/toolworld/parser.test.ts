import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCalls, parseAction, type ParsedCall } from '../../../envs/toolworld/parser.js';

const limits = { maxActionChars: 2000, maxCallsPerTurn: 4 };

describe('parseAction', () => {
  it('reads terse calls, JSON calls, comments and blank lines', () => {
    const message = [
      '# find the note first',
      'notes.search_notes {"query": "milk"}',
      '',
      '  supervisor.complete_task  ',
      '{"app": "notes", "api": "delete_note", "args": {"note_id": 3}}',
      '{"app": "supervisor", "api": "show_profile"}',
    ].join('\n');
    expect(parseAction(message, limits)).toEqual({
      calls: [
        { app: 'notes', api: 'search_notes', args: { query: 'milk' } },
        { app: 'supervisor', api: 'complete_task', args: {} },
        { app: 'notes', api: 'delete_note', args: { note_id: 3 } },
        { app: 'supervisor', api: 'show_profile', args: {} },
      ],
      errors: [],
    });
  });

  it('runs nothing when any line is malformed, and names the lines', () => {
    const result = parseAction('notes.list_notes\nplease delete it\nnotes.show_note {"note_id": 1', limits);
    expect(result.calls).toEqual([]);
    expect(result.errors).toEqual([
      'line 2: expected a call like notes.show_note {"note_id": 1}, got "please delete it"',
      expect.stringMatching(/^line 3: arguments of notes\.show_note are not valid JSON \(/),
    ]);
  });

  it('refuses arguments that are not an object and JSON calls without names or with extra fields', () => {
    expect(parseAction('notes.show_note [1]', limits).errors).toEqual([
      'line 1: arguments of notes.show_note must be a JSON object like {"name": value}, got an array',
    ]);
    expect(parseAction('notes.show_note null', limits).errors[0]).toContain('got null');
    expect(parseAction('{"api": "x"}', limits).errors[0]).toContain('a JSON call needs "app" and "api" names');
    expect(parseAction('{"app": "a", "api": "b", "argz": {}}', limits).errors).toEqual([
      'line 1: unknown field argz in a JSON call (use "app", "api", "args")',
    ]);
    expect(parseAction('{"app": "a", "api": "b", "args": 3}', limits).errors).toEqual(['line 1: "args" of a.b must be a JSON object']);
    expect(parseAction('notes.show_note(note_id=1)', limits).errors[0]).toContain('expected a call like');
  });

  it('caps message length, the number of calls and the number of errors listed', () => {
    expect(parseAction('x'.repeat(2001), limits).errors).toEqual(['the message is 2001 characters long; the limit is 2000']);
    expect(parseAction('a.b\na.b\na.b\na.b\na.b', limits).errors).toEqual(['5 calls in one message; the limit is 4']);
    expect(parseAction('?\n?\n?\n?\n?\n?', limits).errors).toHaveLength(4);
    expect(parseAction('?\n?\n?\n?\n?\n?', limits).errors[3]).toBe('more lines have errors');
  });

  it('finds no calls in an empty or comment-only message (without errors)', () => {
    expect(parseAction('', limits)).toEqual({ calls: [], errors: [] });
    expect(parseAction('# thinking\n\n', limits)).toEqual({ calls: [], errors: [] });
  });

  it('never throws, whatever the message', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (message) => {
        const result = parseAction(message, limits);
        expect(result.calls.length === 0 || result.errors.length === 0).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('reads back what formatCalls writes', () => {
    const identifier = fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/);
    const json = fc.dictionary(identifier, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
    const callArb = fc.record({ app: identifier, api: identifier, args: json }) as fc.Arbitrary<ParsedCall>;
    fc.assert(
      fc.property(fc.array(callArb, { minLength: 1, maxLength: 4 }), (calls) => {
        const normalized = calls.map((c) => ({ ...c, args: JSON.parse(JSON.stringify(c.args)) }));
        expect(parseAction(formatCalls(normalized), { maxActionChars: 100_000, maxCallsPerTurn: 4 })).toEqual({
          calls: normalized,
          errors: [],
        });
      }),
      { numRuns: 300 },
    );
  });
});
