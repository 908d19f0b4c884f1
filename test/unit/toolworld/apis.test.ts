/**
 * Every API of every app: a valid call succeeds (with and without authentication), invalid arguments are
 * a 422 naming the argument, an unauthenticated call is a 401, and every paginated API handles the
 * pagination edges. The tables below must name every API, so a new API without tests fails here.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PAGE_SIZE, type ApiContext } from '../../../envs/toolworld/api.js';
import { ALL_APIS } from '../../../envs/toolworld/apps/index.js';
import { allocateId } from '../../../envs/toolworld/world.js';
import { callApi, failed, first, login, makeContext, ok, type World } from './helpers.js';

/** A valid argument set for each API on a world (may add the rows the call needs). */
const VALID: Record<string, (w: World) => Record<string, unknown>> = {
  'supervisor.show_profile': () => ({}),
  'supervisor.show_account_passwords': () => ({}),
  'supervisor.show_current_time': () => ({}),
  'supervisor.complete_task': () => ({ answer: 'done' }),
  'api_docs.show_app_descriptions': () => ({}),
  'api_docs.show_api_descriptions': () => ({ app_name: 'notes' }),
  'api_docs.show_api_doc': () => ({ app_name: 'notes', api_name: 'delete_note' }),
  'phone.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.phone }),
  'phone.list_contacts': () => ({}),
  'phone.show_contact': (w) => ({ contact_id: w.tables.contacts[0].id }),
  'phone.search_contacts': (w) => ({ query: w.tables.contacts[0].first_name }),
  'phone.add_contact': () => ({ first_name: 'Zoe', last_name: 'Quill', phone: '555-0001', relationship: 'friend' }),
  'phone.update_contact': (w) => ({ contact_id: w.tables.contacts[0].id, relationship: 'cousin' }),
  'phone.delete_contact': (w) => ({ contact_id: w.tables.contacts[0].id }),
  'phone.send_text': (w) => ({ phone_number: w.tables.contacts[0].phone, message: 'hi' }),
  'phone.list_texts': () => ({}),
  'phone.show_text': (w) => ({ text_id: w.tables.texts[0].id }),
  'phone.delete_text': (w) => ({ text_id: w.tables.texts[0].id }),
  'mail.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.mail }),
  'mail.list_emails': () => ({}),
  'mail.show_email': (w) => ({ email_id: w.tables.emails[0].id }),
  'mail.search_emails': () => ({ query: '@' }),
  'mail.send_email': (w) => ({ to: w.tables.contacts[0].email, subject: 'Hi', body: 'see you' }),
  'mail.reply_to_email': (w) => ({ email_id: first(w.tables.emails, (e) => e.folder === 'inbox').id, body: 'ok' }),
  'mail.forward_email': (w) => ({ email_id: w.tables.emails[0].id, to: w.tables.contacts[1].email }),
  'mail.delete_email': (w) => ({ email_id: w.tables.emails[0].id }),
  'mail.mark_email_read': (w) => ({ email_id: first(w.tables.emails, (e) => e.folder === 'inbox').id, read: false }),
  'notes.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.notes }),
  'notes.list_notes': () => ({}),
  'notes.show_note': (w) => ({ note_id: w.tables.notes[0].id }),
  'notes.search_notes': (w) => ({ query: w.tables.notes[0].title }),
  'notes.create_note': () => ({ title: 'new', content: 'milk', tags: ['home'] }),
  'notes.update_note': (w) => ({ note_id: w.tables.notes[0].id, content: 'changed' }),
  'notes.delete_note': (w) => ({ note_id: w.tables.notes[0].id }),
  'notes.add_note_tag': (w) => ({ note_id: w.tables.notes[0].id, tag: 'zz-new' }),
  'notes.remove_note_tag': (w) => {
    w.tables.notes[0].tags.push('zz-old');
    return { note_id: w.tables.notes[0].id, tag: 'zz-old' };
  },
  'wallet.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.wallet }),
  'wallet.show_balance': () => ({}),
  'wallet.list_transactions': () => ({ direction: 'sent' }),
  'wallet.show_transaction': (w) => ({ transaction_id: w.tables.transactions[0].id }),
  'wallet.send_money': (w) => ({ to_email: w.tables.contacts[0].email, amount: 12.5, note: 'lunch' }),
  'wallet.request_money': (w) => ({ from_email: w.tables.contacts[0].email, amount: 3 }),
  'wallet.list_money_requests': () => ({}),
  'wallet.approve_money_request': (w) => ({ request_id: plantRequest(w) }),
  'wallet.decline_money_request': (w) => ({ request_id: plantRequest(w) }),
  'files.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.files }),
  'files.list_directory': () => ({ path: '/' }),
  'files.show_file': (w) => ({ path: w.tables.files[0].path }),
  'files.search_files': () => ({ name_contains: '.' }),
  'files.create_file': (w) => ({ path: `${w.tables.directories[0].path}/zz.txt`, content: 'x' }),
  'files.delete_file': (w) => ({ path: w.tables.files[0].path }),
  'files.move_file': (w) => ({ source_path: w.tables.files[0].path, destination_path: '/' }),
  'files.copy_file': (w) => ({ source_path: w.tables.files[0].path, destination_path: `${w.tables.directories[0].path}/copy.txt` }),
  'files.create_directory': () => ({ path: '/zz' }),
  'calendar.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.calendar }),
  'calendar.list_events': () => ({}),
  'calendar.show_event': (w) => ({ event_id: w.tables.events[0].id }),
  'calendar.create_event': () => ({ title: 'Tea', start: '2024-07-01T10:00:00', end: '2024-07-01T11:00:00' }),
  'calendar.update_event': (w) => ({ event_id: w.tables.events[0].id, location: 'park' }),
  'calendar.delete_event': (w) => ({ event_id: w.tables.events[0].id }),
  'calendar.add_attendee': (w) => ({ event_id: w.tables.events[0].id, email: 'zz@mail.com' }),
  'todo.login': (w) => ({ username: w.supervisor.email, password: w.supervisor.passwords.todo }),
  'todo.list_todo_lists': () => ({}),
  'todo.list_todos': () => ({}),
  'todo.show_todo': (w) => ({ todo_id: w.tables.todos[0].id }),
  'todo.create_todo': (w) => ({ title: 'zz', list: w.tables.todo_lists[0].name, due_date: '2024-08-01' }),
  'todo.update_todo': (w) => ({ todo_id: w.tables.todos[0].id, due_date: null }),
  'todo.mark_todo_done': (w) => ({ todo_id: w.tables.todos[0].id, done: !w.tables.todos[0].done }),
  'todo.delete_todo': (w) => ({ todo_id: w.tables.todos[0].id }),
};

/** Arguments of each paginated API that list at least 3 rows of a full world. */
const PAGED: Record<string, Record<string, unknown>> = {
  'phone.list_contacts': {},
  'phone.search_contacts': { query: '@' },
  'phone.list_texts': {},
  'mail.list_emails': { folder: 'inbox' },
  'mail.search_emails': { query: '@' },
  'notes.list_notes': {},
  'notes.search_notes': { query: ' ' },
  'wallet.list_transactions': {},
  'wallet.list_money_requests': {},
  'files.list_directory': { path: '/' },
  'files.search_files': { name_contains: '.' },
  'calendar.list_events': {},
  'todo.list_todos': {},
};

function plantRequest(w: World): number {
  const id = allocateId(w, 'money_requests');
  w.tables.money_requests.push({
    id,
    direction: 'incoming',
    email: w.tables.contacts[0].email,
    amount: 4.25,
    note: 'tea',
    status: 'pending',
    created_at: '2024-01-01T10:00:00',
  });
  return id;
}

/** `args` plus a token of the API's app when it needs one. */
function withToken(ctx: ApiContext, name: string, args: Record<string, unknown>): Record<string, unknown> {
  const api = ALL_APIS.get(name)!;
  return api.needsToken ? { ...args, access_token: login(ctx, api.app) } : args;
}

const requiredArgs = (name: string): string[] => {
  const shape = ALL_APIS.get(name)!.schema.shape;
  return Object.keys(shape).filter((key) => !shape[key].safeParse(undefined).success);
};

describe('the API catalogue', () => {
  it('has at least 60 APIs over at least 5 apps, and the test tables name every one', () => {
    expect(ALL_APIS.size).toBeGreaterThanOrEqual(60);
    expect(new Set([...ALL_APIS.values()].map((a) => a.app)).size).toBeGreaterThanOrEqual(5);
    expect(Object.keys(VALID).sort()).toEqual([...ALL_APIS.keys()].sort());
    expect(Object.keys(PAGED).sort()).toEqual(
      [...ALL_APIS.entries()]
        .filter(([, a]) => a.paginated)
        .map(([k]) => k)
        .sort(),
    );
  });
});

describe.each([...ALL_APIS.keys()])('%s', (name) => {
  const api = ALL_APIS.get(name)!;

  it('accepts a valid call (with its token when logins are on)', () => {
    const ctx = makeContext();
    const args = VALID[name](ctx.world);
    const outcome = callApi(ctx, name, withToken(ctx, name, args));
    expect(outcome.ok, outcome.ok ? '' : outcome.error).toBe(true);
  });

  it('accepts a valid call without a token when logins are off', () => {
    const ctx = makeContext({ auth: false });
    expect(ok(callApi(ctx, name, VALID[name](ctx.world)))).toBeDefined();
  });

  it('refuses an unknown argument with a 422 naming it', () => {
    const ctx = makeContext();
    const args = { ...VALID[name](ctx.world), bogus_arg: 1 };
    expect(failed(callApi(ctx, name, withToken(ctx, name, args)))).toEqual({
      status: 422,
      error: expect.stringContaining('unknown argument bogus_arg'),
    });
  });

  it('refuses a missing required argument or a mistyped one with a 422', () => {
    const ctx = makeContext();
    const args = VALID[name](ctx.world);
    const required = requiredArgs(name);
    if (required.length > 0) {
      const { [required[0]]: _gone, ...rest } = args;
      expect(failed(callApi(ctx, name, withToken(ctx, name, rest)))).toEqual({
        status: 422,
        error: expect.stringContaining(`missing argument ${required[0]}`),
      });
    } else {
      const key = api.paginated ? 'page' : 'answer';
      const bad = failed(callApi(ctx, name, withToken(ctx, name, { ...args, [key]: { nested: true } })));
      expect(bad.status).toBe(422);
      expect(bad.error).toContain(key);
    }
  });

  it(api.needsToken ? "refuses a call without a token, with a bad token, or with another app's token (401)" : 'needs no token', () => {
    const ctx = makeContext();
    const args = VALID[name](ctx.world);
    if (!api.needsToken) {
      expect(callApi(ctx, name, args).ok).toBe(true);
      return;
    }
    expect(failed(callApi(ctx, name, args))).toEqual({ status: 401, error: expect.stringContaining(`log in with ${api.app}.login`) });
    expect(failed(callApi(ctx, name, { ...args, access_token: 'nope' }))).toEqual({
      status: 401,
      error: expect.stringContaining('not valid'),
    });
    const other = api.app === 'notes' ? 'mail' : 'notes';
    expect(failed(callApi(ctx, name, { ...args, access_token: login(ctx, other) }))).toEqual({
      status: 401,
      error: expect.stringContaining(`is for ${other}`),
    });
  });

  if (api.paginated) {
    it('pages: size 1 pages, the last page, past the end, and bad page arguments', () => {
      const ctx = makeContext({ size: 'full', auth: false });
      const args = PAGED[name];
      const whole: unknown[] = [];
      for (let page = 0; ; page++) {
        const result = ok<{ items: unknown[]; page: number; next_page: number | null }>(
          callApi(ctx, name, { ...args, page, page_size: MAX_PAGE_SIZE }),
        );
        expect(result.page).toBe(page);
        whole.push(...result.items);
        if (result.next_page === null) break;
        expect(result.next_page).toBe(page + 1);
        expect(result.items).toHaveLength(MAX_PAGE_SIZE);
      }
      const n = whole.length;
      expect(n).toBeGreaterThanOrEqual(3);
      const firstPage = ok(callApi(ctx, name, { ...args, page_size: 1 }));
      expect(firstPage).toEqual({ items: [whole[0]], page: 0, next_page: 1 });
      expect(ok(callApi(ctx, name, { ...args, page: n - 1, page_size: 1 }))).toEqual({
        items: [whole[n - 1]],
        page: n - 1,
        next_page: null,
      });
      expect(ok(callApi(ctx, name, { ...args, page: n, page_size: 1 }))).toEqual({ items: [], page: n, next_page: null });
      expect(ok<{ items: unknown[] }>(callApi(ctx, name, args)).items).toEqual(whole.slice(0, 5)); // default page_size
      for (const bad of [{ page: -1 }, { page: 1.5 }, { page_size: 0 }, { page_size: MAX_PAGE_SIZE + 1 }, { page: '1' }]) {
        expect(failed(callApi(ctx, name, { ...args, ...bad })).status).toBe(422);
      }
    });
  }
});
