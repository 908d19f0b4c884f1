/**
 * `files`: a file system. Paths are absolute (`/docs/plan.txt`); a file's folder must exist; `/` always
 * exists. Folders are rows of `directories`, files rows of `files`.
 */
import { z } from 'zod';
import { ApiError, containsText, api, defineApp, paginate, removeById } from '../api.js';
import { allocateId, type World } from '../world.js';
import { loginApi } from './common.js';

const path = z
  .string()
  .max(200)
  .regex(/^\/([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'must be an absolute path like /docs/plan.txt (letters, digits, . _ -)');

/** Folder part of a path (`/` for top-level entries). */
export function parentOf(p: string): string {
  const cut = p.lastIndexOf('/');
  return cut <= 0 ? '/' : p.slice(0, cut);
}

/** Last segment of a path. */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

function isDirectory(world: World, p: string): boolean {
  return p === '/' || world.tables.directories.some((d) => d.path === p);
}

function fileAt(world: World, p: string) {
  return world.tables.files.find((f) => f.path === p);
}

function requireFile(world: World, p: string) {
  const file = fileAt(world, p);
  if (file) return file;
  if (isDirectory(world, p)) throw new ApiError(422, `${p} is a directory, not a file.`);
  throw new ApiError(404, `No file at ${p}.`);
}

function requireFreeTarget(world: World, p: string): void {
  if (!isDirectory(world, parentOf(p)))
    throw new ApiError(404, `Directory ${parentOf(p)} does not exist; create it with files.create_directory.`);
  if (fileAt(world, p)) throw new ApiError(409, `A file already exists at ${p}.`);
  if (isDirectory(world, p)) throw new ApiError(409, `${p} is a directory.`);
}

/** Where a move or copy lands: into `destination` when it is a folder, else at `destination` itself. */
function targetPath(world: World, source: string, destination: string): string {
  return isDirectory(world, destination) ? `${destination === '/' ? '' : destination}/${baseName(source)}` : destination;
}

/** The files app. */
export const filesApp = defineApp({ name: 'files', description: 'Your files and folders.', login: true }, [
  loginApi('files'),
  api({
    name: 'list_directory',
    description: 'List the files and folders directly inside a folder, by name.',
    returns: '{items: [{name, type, path}], page, next_page}',
    args: { path: path.default('/').describe('The folder.') },
    paginated: true,
    run(ctx, args) {
      const { world } = ctx;
      if (!isDirectory(world, args.path)) {
        if (fileAt(world, args.path)) throw new ApiError(422, `${args.path} is a file, not a directory.`);
        throw new ApiError(404, `Directory ${args.path} does not exist.`);
      }
      const entries = [
        ...world.tables.directories
          .filter((d) => parentOf(d.path) === args.path)
          .map((d) => ({ name: baseName(d.path), type: 'directory', path: d.path })),
        ...world.tables.files
          .filter((f) => parentOf(f.path) === args.path)
          .map((f) => ({ name: baseName(f.path), type: 'file', path: f.path })),
      ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return paginate(entries, args);
    },
  }),
  api({
    name: 'show_file',
    description: 'Show a file with its content.',
    returns: '{path, content, created_at, updated_at}',
    args: { path: path.describe('Path of the file.') },
    run(ctx, args) {
      const { id: _id, ...file } = requireFile(ctx.world, args.path);
      return file;
    },
  }),
  api({
    name: 'search_files',
    description: 'Find files anywhere whose name contains a text, by path.',
    returns: '{items: [{path}], page, next_page}',
    args: { name_contains: z.string().min(1).max(100).describe('Text the file name must contain (case-insensitive).') },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.files
        .filter((f) => containsText(baseName(f.path), args.name_contains))
        .map((f) => ({ path: f.path }))
        .sort((a, b) => (a.path < b.path ? -1 : 1));
      return paginate(rows, args);
    },
  }),
  api({
    name: 'create_file',
    description: 'Create a file (overwrite=true replaces an existing one).',
    returns: '{file_id}',
    args: {
      path: path.describe('Path of the new file; its folder must exist.'),
      content: z.string().max(8000).default('').describe('Content.'),
      overwrite: z.boolean().default(false).describe('Replace the file if it exists.'),
    },
    mutates: true,
    run(ctx, args) {
      const { world } = ctx;
      const existing = fileAt(world, args.path);
      if (existing && args.overwrite) {
        existing.content = args.content;
        existing.updated_at = world.now;
        return { file_id: existing.id };
      }
      requireFreeTarget(world, args.path);
      const id = allocateId(world, 'files');
      world.tables.files.push({ id, path: args.path, content: args.content, created_at: world.now, updated_at: world.now });
      return { file_id: id };
    },
  }),
  api({
    name: 'delete_file',
    description: 'Delete a file.',
    returns: '{message}',
    args: { path: path.describe('Path of the file.') },
    mutates: true,
    run(ctx, args) {
      const file = requireFile(ctx.world, args.path);
      removeById(ctx.world.tables.files, file.id);
      return { message: `Deleted ${args.path}.` };
    },
  }),
  api({
    name: 'move_file',
    description: 'Move or rename a file; a folder as destination keeps the name.',
    returns: '{path}',
    args: { source_path: path.describe('The file to move.'), destination_path: path.describe('New path, or a folder to move it into.') },
    mutates: true,
    run(ctx, args) {
      const file = requireFile(ctx.world, args.source_path);
      const target = targetPath(ctx.world, args.source_path, args.destination_path);
      if (target === file.path) throw new ApiError(409, `${file.path} is already there.`);
      requireFreeTarget(ctx.world, target);
      file.path = target;
      return { path: target };
    },
  }),
  api({
    name: 'copy_file',
    description: 'Copy a file; a folder as destination keeps the name.',
    returns: '{file_id, path}',
    args: {
      source_path: path.describe('The file to copy.'),
      destination_path: path.describe('Path of the copy, or a folder to copy it into.'),
    },
    mutates: true,
    run(ctx, args) {
      const file = requireFile(ctx.world, args.source_path);
      const target = targetPath(ctx.world, args.source_path, args.destination_path);
      requireFreeTarget(ctx.world, target);
      const id = allocateId(ctx.world, 'files');
      ctx.world.tables.files.push({ id, path: target, content: file.content, created_at: ctx.world.now, updated_at: ctx.world.now });
      return { file_id: id, path: target };
    },
  }),
  api({
    name: 'create_directory',
    description: 'Create a folder (its parent must exist).',
    returns: '{path}',
    args: { path: path.describe('Path of the new folder.') },
    mutates: true,
    run(ctx, args) {
      if (args.path === '/') throw new ApiError(409, '/ already exists.');
      requireFreeTarget(ctx.world, args.path);
      ctx.world.tables.directories.push({ id: allocateId(ctx.world, 'directories'), path: args.path });
      return { path: args.path };
    },
  }),
]);
