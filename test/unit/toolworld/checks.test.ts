import { describe, expect, it } from 'vitest';
import { answersMatch, expectedChanges, runChecks } from '../../../envs/toolworld/checks.js';
import { cloneWorld, generateWorld } from '../../../envs/toolworld/world.js';
import { invoke } from '../../../envs/toolworld/templates/template.js';

/** A small world where the task is: delete note A, tag note B "work", create note "new". */
function fixture() {
  const initial = generateWorld(11, 'small');
  const [a, b] = initial.tables.notes;
  b.tags = [];
  const expected = cloneWorld(initial);
  invoke(expected, 'notes.delete_note', { note_id: a.id });
  invoke(expected, 'notes.add_note_tag', { note_id: b.id, tag: 'work' });
  invoke(expected, 'notes.create_note', { title: 'new', content: 'milk' });
  return { initial, a, b, expectation: { changes: expectedChanges(initial, expected) } };
}

const done = { completed: true, answer: undefined };

describe('expectedChanges', () => {
  it('lists deletions and updates by id and creations by content, table by table', () => {
    const { a, b, expectation } = fixture();
    expect(expectation.changes.map((c) => (c.kind === 'create' ? `${c.kind} ${c.table}` : `${c.kind} ${c.table}#${c.id}`))).toEqual([
      `delete notes#${a.id}`,
      `update notes#${b.id}`,
      'create notes',
    ]);
  });
});

describe('runChecks', () => {
  it('passes everything for the intended final state, whatever id the new row got', () => {
    const { initial, a, b, expectation } = fixture();
    const final = cloneWorld(initial);
    invoke(final, 'notes.create_note', { title: 'new', content: 'milk' }); // created first: ids differ from the expectation's order
    invoke(final, 'notes.add_note_tag', { note_id: b.id, tag: 'work' });
    invoke(final, 'notes.delete_note', { note_id: a.id });
    expect(runChecks(expectation, initial, final, done)).toEqual([
      { name: `deleted notes#${a.id}`, passed: true },
      { name: `updated notes#${b.id}`, passed: true },
      { name: 'created notes', passed: true },
      { name: 'nothing_extraneous', passed: true },
    ]);
  });

  it('fails nothing_extraneous for an unintended change, and each goal check on its own', () => {
    const { initial, a, expectation } = fixture();
    const final = cloneWorld(initial);
    invoke(final, 'notes.delete_note', { note_id: a.id });
    invoke(final, 'notes.create_note', { title: 'new', content: 'eggs' }); // wrong content: counts as extra row
    invoke(final, 'phone.delete_contact', { contact_id: final.tables.contacts[0].id });
    expect(runChecks(expectation, initial, final, done).map((c) => c.passed)).toEqual([true, false, false, false]);
  });

  it('gives an agent that did nothing no check at all (nothing_extraneous needs a goal passed)', () => {
    const { initial, expectation } = fixture();
    expect(runChecks(expectation, initial, cloneWorld(initial), done).every((c) => !c.passed)).toBe(true);
    const question = { changes: [], answer: 7 };
    expect(runChecks(question, initial, cloneWorld(initial), { completed: true, answer: undefined })).toEqual([
      { name: 'answer', passed: false },
      { name: 'nothing_extraneous', passed: false },
    ]);
    expect(runChecks(question, initial, cloneWorld(initial), { completed: true, answer: '7' }).every((c) => c.passed)).toBe(true);
    expect(runChecks(question, initial, cloneWorld(initial), { completed: false, answer: 7 })[0].passed).toBe(false);
  });

  it('compares lists of strings as sets and trims strings', () => {
    const { initial, b } = fixture();
    const expected = cloneWorld(initial);
    expected.tables.notes.find((n) => n.id === b.id)!.tags = ['x', 'y'];
    const final = cloneWorld(initial);
    const note = final.tables.notes.find((n) => n.id === b.id)!;
    note.tags = ['y', 'x'];
    note.content = ` ${note.content} `;
    expect(runChecks({ changes: expectedChanges(initial, expected) }, initial, final, done).every((c) => c.passed)).toBe(true);
  });
});

describe('answersMatch', () => {
  it('matches numbers within half a cent (also written as text) and text loosely', () => {
    expect(answersMatch(12.5, 12.5)).toBe(true);
    expect(answersMatch('$1,012.50', 1012.5)).toBe(true);
    expect(answersMatch('12.504', 12.5)).toBe(true);
    expect(answersMatch('12.51', 12.5)).toBe(false);
    expect(answersMatch('', 0)).toBe(false);
    expect(answersMatch('twelve', 12)).toBe(false);
    expect(answersMatch('  Ana   Diaz. ', 'ana diaz')).toBe(true);
    expect(answersMatch('"groceries"', 'groceries')).toBe(true);
    expect(answersMatch('555-1234', '555-1234')).toBe(true);
    expect(answersMatch(5, '5')).toBe(true);
    expect(answersMatch(undefined, 'x')).toBe(false);
  });
});
