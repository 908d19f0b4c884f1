/** `todo`: to-do items in named lists. */
import { z } from 'zod';
import { ApiError, api, defineApp, fields, findById, paginate, removeById } from '../api.js';
import { allocateId, type World } from '../world.js';
import { loginApi, requireSomeField } from './common.js';

function requireList(world: World, name: string): void {
  if (!world.tables.todo_lists.some((l) => l.name === name)) {
    throw new ApiError(404, `No to-do list named ${name}; lists: ${world.tables.todo_lists.map((l) => l.name).join(', ')}.`);
  }
}

/** The todo app. */
export const todoApp = defineApp({ name: 'todo', description: 'Your to-do lists.', login: true }, [
  loginApi('todo'),
  api({
    name: 'list_todo_lists',
    description: 'List your to-do lists with how many items are open and done.',
    returns: '[{name, open, done}]',
    args: {},
    run(ctx) {
      const { todo_lists: lists, todos } = ctx.world.tables;
      return lists.map((l) => ({
        name: l.name,
        open: todos.filter((t) => t.list === l.name && !t.done).length,
        done: todos.filter((t) => t.list === l.name && t.done).length,
      }));
    },
  }),
  api({
    name: 'list_todos',
    description: 'List to-dos, optionally of one list and by done state.',
    returns: '{items: [{id, title, list, due_date, done}], page, next_page}',
    args: {
      list: z.string().min(1).max(40).optional().describe('Only this list.'),
      done: z.boolean().optional().describe('true = only done items, false = only open items.'),
    },
    paginated: true,
    run(ctx, args) {
      if (args.list !== undefined) requireList(ctx.world, args.list);
      const rows = ctx.world.tables.todos
        .filter((t) => (args.list === undefined || t.list === args.list) && (args.done === undefined || t.done === args.done))
        .map(({ created_at: _created, ...rest }) => rest);
      return paginate(rows, args);
    },
  }),
  api({
    name: 'show_todo',
    description: 'Show one to-do.',
    returns: '{id, title, list, due_date, done, created_at}',
    args: { todo_id: fields.id.describe('Id of the to-do.') },
    run(ctx, args) {
      return findById(ctx.world.tables.todos, args.todo_id, 'To-do', 'todo_id');
    },
  }),
  api({
    name: 'create_todo',
    description: 'Add a to-do to a list.',
    returns: '{todo_id}',
    args: {
      title: fields.text(100).describe('What to do.'),
      list: z.string().min(1).max(40).describe('Name of an existing list.'),
      due_date: fields.date.nullable().default(null).describe('Due date, YYYY-MM-DD.'),
    },
    mutates: true,
    run(ctx, args) {
      requireList(ctx.world, args.list);
      const id = allocateId(ctx.world, 'todos');
      ctx.world.tables.todos.push({
        id,
        title: args.title,
        list: args.list,
        due_date: args.due_date,
        done: false,
        created_at: ctx.world.now,
      });
      return { todo_id: id };
    },
  }),
  api({
    name: 'update_todo',
    description: 'Change the title or due date of a to-do.',
    returns: '{message}',
    args: {
      todo_id: fields.id.describe('Id of the to-do.'),
      title: fields.text(100).optional().describe('New title.'),
      due_date: fields.date.nullable().optional().describe('New due date (null removes it).'),
    },
    mutates: true,
    run(ctx, args) {
      requireSomeField(args, ['title', 'due_date']);
      const todo = findById(ctx.world.tables.todos, args.todo_id, 'To-do', 'todo_id');
      if (args.title !== undefined) todo.title = args.title;
      if (args.due_date !== undefined) todo.due_date = args.due_date;
      return { message: `To-do ${todo.id} updated.` };
    },
  }),
  api({
    name: 'mark_todo_done',
    description: 'Mark a to-do as done (or open again with done=false).',
    returns: '{message}',
    args: { todo_id: fields.id.describe('Id of the to-do.'), done: z.boolean().default(true).describe('The new state.') },
    mutates: true,
    run(ctx, args) {
      const todo = findById(ctx.world.tables.todos, args.todo_id, 'To-do', 'todo_id');
      if (todo.done === args.done) throw new ApiError(409, `To-do ${todo.id} is already ${args.done ? 'done' : 'open'}.`);
      todo.done = args.done;
      return { message: `To-do ${todo.id} marked ${args.done ? 'done' : 'open'}.` };
    },
  }),
  api({
    name: 'delete_todo',
    description: 'Delete a to-do.',
    returns: '{message}',
    args: { todo_id: fields.id.describe('Id of the to-do.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.todos, args.todo_id, 'To-do', 'todo_id');
      removeById(ctx.world.tables.todos, args.todo_id);
      return { message: `To-do ${args.todo_id} deleted.` };
    },
  }),
]);
