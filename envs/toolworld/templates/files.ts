/** Task templates of the files app (one with notes). */
import type { Rng } from '../../../core/rng.js';
import { baseName, parentOf } from '../apps/files.js';
import { DIRECTORIES, FILE_STEMS, NOTE_WORDS } from '../vocab.js';
import { allocateId, pick, sample, type World } from '../world.js';
import { freshFrom, invoke, q, recent, type TaskTemplate } from './template.js';

interface Entry {
  name: string;
  type: string;
  path: string;
}

/** A file path in an existing folder that no file has. */
export function freshFilePath(world: World, rng: Rng, extension = 'txt'): string | undefined {
  const dir = pick(rng, world.tables.directories).path;
  const stem = freshFrom(
    rng,
    FILE_STEMS,
    world.tables.files.map((f) => baseName(f.path).replace(/\.[^.]+$/, '')),
  );
  return stem === undefined ? undefined : `${dir}/${stem}.${extension}`;
}

/** `/<folder>/<stem>.txt` in an existing folder, when no file has that path. */
export function freshNamedFilePath(world: World, rng: Rng, stem: string): string | undefined {
  const path = `${pick(rng, world.tables.directories).path}/${stem}.txt`;
  return world.tables.files.some((f) => f.path === path) ? undefined : path;
}

/** Add a file row. */
export function plantFile(world: World, path: string, content: string, createdAt: string): number {
  const id = allocateId(world, 'files');
  world.tables.files.push({ id, path, content, created_at: createdAt, updated_at: createdAt });
  return id;
}

export const filesTemplates: TaskTemplate[] = [
  {
    name: 'files_create',
    apps: ['files'],
    level: 1,
    group: 'normal',
    example: 'Create the file /docs/plan.txt with the text "milk eggs".',
    make(world, rng) {
      const path = freshFilePath(world, rng);
      if (path === undefined) return undefined;
      const content = sample(rng, NOTE_WORDS, 2).join(' ');
      return {
        instruction: `Create the file ${path} with the text ${q(content)}.`,
        apply: (w) => invoke(w, 'files.create_file', { path, content }),
        apis: ['files.create_file'],
        *solve(s) {
          yield* s.finish([s.api('files', 'create_file', { path: s.copy(path), content })]);
        },
      };
    },
  },
  {
    name: 'files_delete',
    apps: ['files'],
    level: 1,
    group: 'normal',
    example: 'Delete the file /work/memo.txt.',
    make(world, rng) {
      if (world.tables.files.length === 0) return undefined;
      const file = pick(rng, world.tables.files);
      return {
        instruction: `Delete the file ${file.path}.`,
        apply: (w) => invoke(w, 'files.delete_file', { path: file.path }),
        apis: ['files.delete_file'],
        *solve(s) {
          yield* s.finish([s.api('files', 'delete_file', { path: s.copy(file.path) })]);
        },
      };
    },
  },
  {
    name: 'files_move',
    apps: ['files'],
    level: 1,
    group: 'normal',
    example: 'Move /docs/plan.txt to the folder /work.',
    make(world, rng) {
      if (world.tables.files.length === 0) return undefined;
      const file = pick(rng, world.tables.files);
      const targets = world.tables.directories.filter((d) => d.path !== parentOf(file.path));
      if (targets.length === 0) return undefined;
      const dir = pick(rng, targets).path;
      if (world.tables.files.some((f) => f.path === `${dir}/${baseName(file.path)}`)) return undefined;
      return {
        instruction: `Move ${file.path} to the folder ${dir}.`,
        apply: (w) => invoke(w, 'files.move_file', { source_path: file.path, destination_path: dir }),
        apis: ['files.move_file'],
        *solve(s) {
          yield* s.finish([s.api('files', 'move_file', { source_path: file.path, destination_path: s.copy(dir) })]);
        },
      };
    },
  },
  {
    name: 'files_read',
    apps: ['files'],
    level: 1,
    group: 'normal',
    example: 'What does the file /docs/list.txt say? Answer with its text.',
    make(world, rng) {
      if (world.tables.files.length === 0) return undefined;
      const file = pick(rng, world.tables.files);
      return {
        instruction: `What does the file ${file.path} say? Answer with its text.`,
        answer: file.content,
        apis: ['files.show_file'],
        *solve(s) {
          const shown = yield* s.get<{ content: string }>('files', 'show_file', { path: file.path });
          yield* s.finish([], shown.content);
        },
      };
    },
  },
  {
    name: 'files_count_folder',
    apps: ['files'],
    level: 2,
    group: 'normal',
    example: 'How many files are in the folder /photos?',
    make(world, rng) {
      const dir = pick(rng, world.tables.directories).path;
      const path = freshFilePath(world, rng);
      if (path === undefined) return undefined;
      plantFile(world, `${dir}/${baseName(path)}`, pick(rng, NOTE_WORDS), recent(rng, world, 30));
      const count = world.tables.files.filter((f) => parentOf(f.path) === dir).length;
      return {
        instruction: `How many files are in the folder ${dir}?`,
        answer: count,
        apis: ['files.list_directory'],
        *solve(s) {
          const all = yield* s.listAll<Entry>('files', 'list_directory', { path: dir });
          yield* s.finish([], all.filter((e) => e.type === 'file').length);
        },
      };
    },
  },
  {
    name: 'files_delete_extension',
    apps: ['files'],
    level: 2,
    group: 'normal',
    example: 'Delete every .csv file in the folder /work.',
    make(world, rng) {
      const dir = pick(rng, world.tables.directories).path;
      const extension = pick(rng, ['csv', 'md', 'log']);
      const stem = freshFrom(
        rng,
        FILE_STEMS,
        world.tables.files.map((f) => baseName(f.path).replace(/\.[^.]+$/, '')),
      );
      if (stem === undefined) return undefined;
      plantFile(world, `${dir}/${stem}.${extension}`, pick(rng, NOTE_WORDS), recent(rng, world, 30));
      const doomed = world.tables.files.filter((f) => parentOf(f.path) === dir && f.path.endsWith(`.${extension}`)).map((f) => f.path);
      return {
        instruction: `Delete every .${extension} file in the folder ${dir}.`,
        apply: (w) => doomed.forEach((path) => invoke(w, 'files.delete_file', { path })),
        apis: ['files.list_directory', 'files.delete_file'],
        *solve(s) {
          const all = yield* s.listAll<Entry>('files', 'list_directory', { path: dir });
          const chosen = s.chooseAll(all, (e) => e.type === 'file' && e.name.endsWith(`.${extension}`));
          yield* s.finish(chosen.map((e) => s.api('files', 'delete_file', { path: e.path })));
        },
      };
    },
  },
  {
    name: 'files_backup',
    apps: ['files'],
    level: 2,
    group: 'normal',
    example: 'Make a folder /backup and copy /docs/plan.txt into it.',
    make(world, rng) {
      if (world.tables.files.length === 0) return undefined;
      const file = pick(rng, world.tables.files);
      const dir = `/${
        freshFrom(
          rng,
          [...DIRECTORIES, 'backup', 'old', 'archive'],
          world.tables.directories.map((d) => d.path.slice(1)),
        ) ?? 'backup'
      }`;
      return {
        instruction: `Make a folder ${dir} and copy ${file.path} into it.`,
        apply: (w) => {
          invoke(w, 'files.create_directory', { path: dir });
          invoke(w, 'files.copy_file', { source_path: file.path, destination_path: dir });
        },
        apis: ['files.create_directory', 'files.copy_file'],
        *solve(s) {
          yield* s.finish([
            s.api('files', 'create_directory', { path: dir }),
            s.api('files', 'copy_file', { source_path: s.copy(file.path), destination_path: dir }),
          ]);
        },
      };
    },
  },
  {
    name: 'files_note_to_file',
    apps: ['notes', 'files'],
    level: 3,
    group: 'normal',
    example: 'Save the text of my note "ideas" to a new file /docs/ideas.txt.',
    make(world, rng) {
      const note = pick(rng, world.tables.notes);
      const path = freshFilePath(world, rng);
      if (path === undefined) return undefined;
      return {
        instruction: `Save the text of my note ${q(note.title)} to a new file ${path}.`,
        apply: (w) => invoke(w, 'files.create_file', { path, content: note.content }),
        apis: ['notes.search_notes', 'notes.show_note', 'files.create_file'],
        *solve(s) {
          const found = yield* s.listAll<{ id: number; title: string }>(
            'notes',
            'search_notes',
            { query: note.title },
            (n) => n.title === note.title,
          );
          const chosen = s.choose(found, (n) => n.title === note.title);
          const full = yield* s.get<{ content: string }>('notes', 'show_note', { note_id: chosen.id });
          yield* s.finish([s.api('files', 'create_file', { path, content: full.content })]);
        },
      };
    },
  },
];
