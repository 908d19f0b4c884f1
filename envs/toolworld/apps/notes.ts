/** `notes`: notes with a title, free text and tags. */
import { z } from 'zod';
import { ApiError, containsText, api, defineApp, fields, findById, paginate, removeById } from '../api.js';
import { allocateId, type Note } from '../world.js';
import { loginApi, newestFirst, requireSomeField } from './common.js';

const tag = z.string().regex(/^[a-z0-9-]{1,20}$/, 'must be a lowercase word (a-z, 0-9, -)');

function summary(n: Note) {
  return { id: n.id, title: n.title, tags: n.tags, created_at: n.created_at };
}

/** The notes app. */
export const notesApp = defineApp({ name: 'notes', description: 'Your notes, with titles and tags.', login: true }, [
  loginApi('notes'),
  api({
    name: 'list_notes',
    description: 'List your notes, newest first, optionally only those with a tag.',
    returns: '{items: [{id, title, tags, created_at}], page, next_page}',
    args: { tag: tag.optional().describe('Only notes with this tag.') },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.notes.filter((n) => args.tag === undefined || n.tags.includes(args.tag));
      return paginate(newestFirst(rows, (n) => n.created_at).map(summary), args);
    },
  }),
  api({
    name: 'show_note',
    description: 'Show one note with its content.',
    returns: '{id, title, content, tags, created_at, updated_at}',
    args: { note_id: fields.id.describe('Id of the note.') },
    run(ctx, args) {
      return findById(ctx.world.tables.notes, args.note_id, 'Note', 'note_id');
    },
  }),
  api({
    name: 'search_notes',
    description: 'Find notes whose title or content contains the query, newest first.',
    returns: '{items: [{id, title, tags, created_at}], page, next_page}',
    args: { query: fields.text(100).describe('Text to look for (case-insensitive).') },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.notes.filter((n) => containsText(n.title, args.query) || containsText(n.content, args.query));
      return paginate(newestFirst(rows, (n) => n.created_at).map(summary), args);
    },
  }),
  api({
    name: 'create_note',
    description: 'Create a note.',
    returns: '{note_id}',
    args: {
      title: fields.text(100).describe('Title.'),
      content: z.string().max(4000).default('').describe('Text of the note.'),
      tags: z.array(tag).max(10).default([]).describe('Tags.'),
    },
    mutates: true,
    run(ctx, args) {
      const id = allocateId(ctx.world, 'notes');
      const now = ctx.world.now;
      ctx.world.tables.notes.push({
        id,
        title: args.title,
        content: args.content,
        tags: [...new Set(args.tags)],
        created_at: now,
        updated_at: now,
      });
      return { note_id: id };
    },
  }),
  api({
    name: 'update_note',
    description: 'Change the title or content of a note.',
    returns: '{message}',
    args: {
      note_id: fields.id.describe('Id of the note.'),
      title: fields.text(100).optional().describe('New title.'),
      content: z.string().max(4000).optional().describe('New content (replaces the old).'),
    },
    mutates: true,
    run(ctx, args) {
      requireSomeField(args, ['title', 'content']);
      const note = findById(ctx.world.tables.notes, args.note_id, 'Note', 'note_id');
      if (args.title !== undefined) note.title = args.title;
      if (args.content !== undefined) note.content = args.content;
      note.updated_at = ctx.world.now;
      return { message: `Note ${note.id} updated.` };
    },
  }),
  api({
    name: 'delete_note',
    description: 'Delete a note.',
    returns: '{message}',
    args: { note_id: fields.id.describe('Id of the note.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.notes, args.note_id, 'Note', 'note_id');
      removeById(ctx.world.tables.notes, args.note_id);
      return { message: `Note ${args.note_id} deleted.` };
    },
  }),
  api({
    name: 'add_note_tag',
    description: 'Add a tag to a note.',
    returns: '{message}',
    args: { note_id: fields.id.describe('Id of the note.'), tag: tag.describe('The tag.') },
    mutates: true,
    run(ctx, args) {
      const note = findById(ctx.world.tables.notes, args.note_id, 'Note', 'note_id');
      if (note.tags.includes(args.tag)) throw new ApiError(409, `Note ${note.id} already has the tag ${args.tag}.`);
      note.tags.push(args.tag);
      note.updated_at = ctx.world.now;
      return { message: `Tag ${args.tag} added to note ${note.id}.` };
    },
  }),
  api({
    name: 'remove_note_tag',
    description: 'Remove a tag from a note.',
    returns: '{message}',
    args: { note_id: fields.id.describe('Id of the note.'), tag: tag.describe('The tag.') },
    mutates: true,
    run(ctx, args) {
      const note = findById(ctx.world.tables.notes, args.note_id, 'Note', 'note_id');
      if (!note.tags.includes(args.tag)) throw new ApiError(404, `Note ${note.id} has no tag ${args.tag}.`);
      note.tags = note.tags.filter((t) => t !== args.tag);
      note.updated_at = ctx.world.now;
      return { message: `Tag ${args.tag} removed from note ${note.id}.` };
    },
  }),
]);
