/** Task templates of the notes app. */
import { NOTE_TITLES, NOTE_WORDS, TAGS } from '../vocab.js';
import { addDays, pick, sample } from '../world.js';
import { freshFrom, invoke, plantNote, q, type TaskTemplate } from './template.js';

interface NoteItem {
  id: number;
  title: string;
  tags: string[];
  created_at: string;
}

/** Search notes for `title` and take the one with that exact title. */
function* findNote(s: import('../solver.js').SolverContext, title: string) {
  const found = yield* s.listAll<NoteItem>('notes', 'search_notes', { query: title }, (n) => n.title === title);
  return s.choose(found, (n) => n.title === title);
}

export const notesTemplates: TaskTemplate[] = [
  {
    name: 'notes_delete',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Delete my note "groceries".',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      return {
        instruction: `Delete my note ${q(note.title)}.`,
        apply: (w) => invoke(w, 'notes.delete_note', { note_id: note.id }),
        apis: ['notes.search_notes', 'notes.delete_note'],
        *solve(s) {
          const found = yield* findNote(s, note.title);
          yield* s.finish([s.api('notes', 'delete_note', { note_id: found.id })]);
        },
      };
    },
  },
  {
    name: 'notes_create',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Create a note "packing" that says "socks maps tape".',
    make(world, rng) {
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (title === undefined) return undefined;
      const content = sample(rng, NOTE_WORDS, 3).join(' ');
      return {
        instruction: `Create a note ${q(title)} that says ${q(content)}.`,
        apply: (w) => invoke(w, 'notes.create_note', { title, content }),
        apis: ['notes.create_note'],
        *solve(s) {
          yield* s.finish([s.api('notes', 'create_note', { title: s.copy(title), content })]);
        },
      };
    },
  },
  {
    name: 'notes_create_tagged',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Create a note "books" tagged "ideas" that says "maps pens".',
    make(world, rng) {
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (title === undefined) return undefined;
      const content = sample(rng, NOTE_WORDS, 2).join(' ');
      const tag = pick(rng, TAGS);
      return {
        instruction: `Create a note ${q(title)} tagged ${q(tag)} that says ${q(content)}.`,
        apply: (w) => invoke(w, 'notes.create_note', { title, content, tags: [tag] }),
        apis: ['notes.create_note'],
        *solve(s) {
          yield* s.finish([s.api('notes', 'create_note', { title, content: s.copy(content), tags: [tag] })]);
        },
      };
    },
  },
  {
    name: 'notes_add_tag',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Tag my note "budget" with "money".',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      const tag = freshFrom(rng, TAGS, note.tags);
      if (tag === undefined) return undefined;
      return {
        instruction: `Tag my note ${q(note.title)} with ${q(tag)}.`,
        apply: (w) => invoke(w, 'notes.add_note_tag', { note_id: note.id, tag }),
        apis: ['notes.search_notes', 'notes.add_note_tag'],
        *solve(s) {
          const found = yield* findNote(s, note.title);
          yield* s.finish([s.api('notes', 'add_note_tag', { note_id: found.id, tag: s.copy(tag) })]);
        },
      };
    },
  },
  {
    name: 'notes_rename',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Rename my note "ideas" to "plans".',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (title === undefined) return undefined;
      return {
        instruction: `Rename my note ${q(note.title)} to ${q(title)}.`,
        apply: (w) => invoke(w, 'notes.update_note', { note_id: note.id, title }),
        apis: ['notes.search_notes', 'notes.update_note'],
        *solve(s) {
          const found = yield* findNote(s, note.title);
          yield* s.finish([s.api('notes', 'update_note', { note_id: found.id, title: s.copy(title) })]);
        },
      };
    },
  },
  {
    name: 'notes_append',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'Add the line "buy tea" to the end of my note "errands".',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      const line = `buy ${pick(rng, NOTE_WORDS)}`;
      return {
        instruction: `Add the line ${q(line)} to the end of my note ${q(note.title)}.`,
        apply: (w) => invoke(w, 'notes.update_note', { note_id: note.id, content: `${note.content}\n${line}` }),
        apis: ['notes.search_notes', 'notes.show_note', 'notes.update_note'],
        *solve(s) {
          const found = yield* findNote(s, note.title);
          const full = yield* s.get<{ content: string }>('notes', 'show_note', { note_id: found.id });
          yield* s.finish([s.api('notes', 'update_note', { note_id: found.id, content: `${full.content}\n${s.copy(line)}` })]);
        },
      };
    },
  },
  {
    name: 'notes_read',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'What does my note "goals" say? Answer with its text.',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      return {
        instruction: `What does my note ${q(note.title)} say? Answer with its text.`,
        answer: note.content,
        apis: ['notes.search_notes', 'notes.show_note'],
        *solve(s) {
          const found = yield* findNote(s, note.title);
          const full = yield* s.get<{ content: string }>('notes', 'show_note', { note_id: found.id });
          yield* s.finish([], full.content);
        },
      };
    },
  },
  {
    name: 'notes_latest',
    apps: ['notes'],
    level: 1,
    group: 'normal',
    example: 'What is the title of my newest note?',
    make(world, rng) {
      // Generated notes are at least a day old; this one is from this morning, before "now" (≥ 09:00).
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (title === undefined) return undefined;
      plantNote(world, title, pick(rng, NOTE_WORDS), [], `${world.now.slice(0, 10)}T08:00:00`);
      return {
        instruction: 'What is the title of my newest note?',
        answer: title,
        apis: ['notes.list_notes'],
        *solve(s) {
          const page = yield* s.get<{ items: NoteItem[] }>('notes', 'list_notes', { page_size: 1 });
          yield* s.finish([], page.items[0].title);
        },
      };
    },
  },
  {
    name: 'notes_count_tag',
    apps: ['notes'],
    level: 2,
    group: 'normal',
    example: 'How many of my notes are tagged "work"?',
    make(world, rng) {
      const tag = pick(rng, TAGS);
      const target = world.tables.notes.filter((n) => !n.tags.includes(tag));
      for (const note of sample(rng, target, 1 + rng.int(2))) note.tags.push(tag);
      const count = world.tables.notes.filter((n) => n.tags.includes(tag)).length;
      return {
        instruction: `How many of my notes are tagged ${q(tag)}?`,
        answer: count,
        apis: ['notes.list_notes'],
        *solve(s) {
          const all = yield* s.listAll<NoteItem>('notes', 'list_notes', { tag });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'notes_delete_tag_older',
    apps: ['notes'],
    level: 2,
    group: 'normal',
    example: 'Delete all my notes tagged "travel" created before 2024-04-01.',
    make(world, rng) {
      const tag = pick(rng, TAGS);
      const cutoff = addDays(world.now, -(20 + rng.int(20)));
      const used = world.tables.notes.map((n) => n.title);
      const older = 1 + rng.int(2);
      for (let i = 0; i < older + 1; i++) {
        const title = freshFrom(rng, NOTE_TITLES, used);
        if (title === undefined) return undefined;
        used.push(title);
        const days = i < older ? 45 + rng.int(40) : 1 + rng.int(15);
        plantNote(world, title, pick(rng, NOTE_WORDS), [tag], `${addDays(world.now, -days)}T10:00:00`);
      }
      const doomed = world.tables.notes.filter((n) => n.tags.includes(tag) && n.created_at < cutoff).map((n) => n.id);
      return {
        instruction: `Delete all my notes tagged ${q(tag)} created before ${cutoff}.`,
        apply: (w) => doomed.forEach((id) => invoke(w, 'notes.delete_note', { note_id: id })),
        apis: ['notes.list_notes', 'notes.delete_note'],
        *solve(s) {
          const all = yield* s.listAll<NoteItem>('notes', 'list_notes', { tag });
          const chosen = s.chooseAll(all, (n) => n.created_at < cutoff);
          yield* s.finish(chosen.map((n) => s.api('notes', 'delete_note', { note_id: n.id })));
        },
      };
    },
  },
  {
    name: 'notes_untag_all',
    apps: ['notes'],
    level: 2,
    group: 'normal',
    example: 'Remove the tag "home" from all my notes.',
    make(world, rng) {
      const tag = pick(rng, TAGS);
      for (const note of sample(
        rng,
        world.tables.notes.filter((n) => !n.tags.includes(tag)),
        1,
      ))
        note.tags.push(tag);
      const tagged = world.tables.notes.filter((n) => n.tags.includes(tag)).map((n) => n.id);
      return {
        instruction: `Remove the tag ${q(tag)} from all my notes.`,
        apply: (w) => tagged.forEach((id) => invoke(w, 'notes.remove_note_tag', { note_id: id, tag })),
        apis: ['notes.list_notes', 'notes.remove_note_tag'],
        *solve(s) {
          const all = yield* s.listAll<NoteItem>('notes', 'list_notes', { tag });
          const chosen = s.chooseAll(all, () => true);
          yield* s.finish(chosen.map((n) => s.api('notes', 'remove_note_tag', { note_id: n.id, tag })));
        },
      };
    },
  },
];
