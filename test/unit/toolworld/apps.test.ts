/** What the APIs do, with hand-computed expectations: state changes, orderings, and their error messages. */
import { describe, expect, it } from 'vitest';
import { ALL_APIS, APPS } from '../../../envs/toolworld/apps/index.js';
import { apiDoc } from '../../../envs/toolworld/apps/api-docs.js';
import { callApi, failed, first, login, makeContext, ok } from './helpers.js';

describe('authentication', () => {
  it('issues a token for the right email and password only, valid for that app', () => {
    const ctx = makeContext();
    const { email, passwords } = ctx.world.supervisor;
    expect(failed(callApi(ctx, 'notes.login', { username: email, password: 'wrong' }))).toEqual({
      status: 401,
      error: `Wrong password for ${email} on notes; passwords are listed by supervisor.show_account_passwords.`,
    });
    expect(failed(callApi(ctx, 'notes.login', { username: 'x@mail.com', password: passwords.notes })).error).toContain(
      'No notes account has the username x@mail.com',
    );
    const token = login(ctx, 'notes');
    expect(ok(callApi(ctx, 'notes.list_notes', { access_token: token })).items.length).toBeGreaterThan(0);
    expect(failed(callApi(ctx, 'mail.list_emails', { access_token: token })).status).toBe(401);
  });

  it('lists one password per app that needs a login', () => {
    const ctx = makeContext();
    const passwords = ok<Array<{ app: string; password: string }>>(callApi(ctx, 'supervisor.show_account_passwords'));
    expect(passwords.map((p) => p.app).sort()).toEqual(
      [...APPS.values()]
        .filter((a) => a.login)
        .map((a) => a.name)
        .sort(),
    );
  });
});

describe('api_docs', () => {
  it('documents every API with exactly the parameters its schema accepts', () => {
    for (const api of ALL_APIS.values()) {
      const doc = apiDoc(api);
      expect(doc.parameters.map((p) => p.name).sort()).toEqual(Object.keys(api.schema.shape).sort());
      expect(doc.description).not.toBe('');
      for (const p of doc.parameters) expect(p.description, `${api.app}.${api.name}.${p.name}`).not.toBe('');
    }
  });

  it('shows a doc with types, required flags and defaults', () => {
    const ctx = makeContext();
    const doc = ok(callApi(ctx, 'api_docs.show_api_doc', { app_name: 'mail', api_name: 'list_emails' }));
    expect(doc.parameters).toContainEqual({
      name: 'folder',
      type: 'inbox|sent',
      required: false,
      description: 'Which folder.',
      default: 'inbox',
    });
    expect(doc.parameters).toContainEqual({
      name: 'page_size',
      type: 'integer',
      required: false,
      description: 'Items per page (1-20).',
      constraints: '>= 1, <= 20',
    });
  });

  it('answers unknown apps and APIs with the valid names', () => {
    const ctx = makeContext();
    expect(failed(callApi(ctx, 'api_docs.show_api_descriptions', { app_name: 'nots' })).error).toContain(
      'No app named nots; apps: supervisor, api_docs, phone',
    );
    expect(failed(callApi(ctx, 'api_docs.show_api_doc', { app_name: 'notes', api_name: 'remove' })).error).toContain(
      'App notes has no API named remove; APIs: login, list_notes',
    );
    expect(ok<unknown[]>(callApi(ctx, 'api_docs.show_app_descriptions'))).toHaveLength(APPS.size);
  });

  it('with docs enforced, refuses an API until its doc was shown (login exempt)', () => {
    const ctx = makeContext({ auth: false });
    expect(failed(callApi(ctx, 'notes.list_notes', {}, true))).toEqual({
      status: 403,
      error: 'Read the documentation before calling notes.list_notes: api_docs.show_api_doc {"app_name":"notes","api_name":"list_notes"}.',
    });
    ok(callApi(ctx, 'api_docs.show_api_doc', { app_name: 'notes', api_name: 'list_notes' }, true));
    expect(callApi(ctx, 'notes.list_notes', {}, true).ok).toBe(true);
    expect(
      callApi(ctx, 'mail.login', { username: ctx.world.supervisor.email, password: ctx.world.supervisor.passwords.mail }, true).ok,
    ).toBe(true);
  });
});

describe('wallet', () => {
  it('pays from the balance to the cent and refuses overdrafts, self-payments and a third decimal', () => {
    const ctx = makeContext({ auth: false });
    const wallet = ctx.world.tables.wallet[0];
    wallet.balance = 100;
    const to = ctx.world.tables.contacts[0].email;
    const { transaction_id } = ok(callApi(ctx, 'wallet.send_money', { to_email: to, amount: 12.34, note: 'tea', category: 'dining' }));
    expect(wallet.balance).toBe(87.66);
    expect(ctx.world.tables.transactions.find((t) => t.id === transaction_id)).toEqual({
      id: transaction_id,
      direction: 'sent',
      email: to,
      amount: 12.34,
      category: 'dining',
      note: 'tea',
      created_at: ctx.world.now,
    });
    expect(failed(callApi(ctx, 'wallet.send_money', { to_email: to, amount: 90 }))).toEqual({
      status: 402,
      error: 'Insufficient balance: you have $87.66.',
    });
    expect(failed(callApi(ctx, 'wallet.send_money', { to_email: ctx.world.supervisor.email, amount: 1 })).status).toBe(422);
    expect(failed(callApi(ctx, 'wallet.send_money', { to_email: to, amount: 1.005 })).error).toContain('at most two decimals');
  });

  it('approves an incoming request once, paying it; outgoing requests cannot be approved', () => {
    const ctx = makeContext({ auth: false });
    ctx.world.tables.wallet[0].balance = 50;
    ctx.world.tables.money_requests.push(
      {
        id: 900,
        direction: 'incoming',
        email: 'a@mail.com',
        amount: 20,
        note: 'pizza',
        status: 'pending',
        created_at: '2024-01-01T00:00:00',
      },
      { id: 901, direction: 'outgoing', email: 'b@mail.com', amount: 5, note: '', status: 'pending', created_at: '2024-01-01T00:00:00' },
    );
    ok(callApi(ctx, 'wallet.approve_money_request', { request_id: 900 }));
    expect(ctx.world.tables.wallet[0].balance).toBe(30);
    expect(ctx.world.tables.money_requests.find((r) => r.id === 900)!.status).toBe('approved');
    expect(ctx.world.tables.transactions.at(-1)).toMatchObject({ email: 'a@mail.com', amount: 20, note: 'pizza', category: 'transfer' });
    expect(failed(callApi(ctx, 'wallet.approve_money_request', { request_id: 900 }))).toEqual({
      status: 409,
      error: 'Request 900 is already approved.',
    });
    expect(failed(callApi(ctx, 'wallet.decline_money_request', { request_id: 901 })).status).toBe(422);
  });

  it('filters transactions by direction, category and an inclusive date range', () => {
    const ctx = makeContext({ auth: false });
    ctx.world.tables.transactions = [
      { id: 1, direction: 'sent', email: 'a@mail.com', amount: 1, category: 'dining', note: '', created_at: '2024-03-31T23:00:00' },
      { id: 2, direction: 'sent', email: 'a@mail.com', amount: 2, category: 'dining', note: '', created_at: '2024-04-01T08:00:00' },
      { id: 3, direction: 'sent', email: 'a@mail.com', amount: 4, category: 'rent', note: '', created_at: '2024-04-15T08:00:00' },
      { id: 4, direction: 'received', email: 'a@mail.com', amount: 8, category: 'transfer', note: '', created_at: '2024-04-30T20:00:00' },
      { id: 5, direction: 'sent', email: 'a@mail.com', amount: 16, category: 'dining', note: '', created_at: '2024-04-30T21:00:00' },
    ];
    const ids = (args: Record<string, unknown>) =>
      ok<{ items: Array<{ id: number }> }>(callApi(ctx, 'wallet.list_transactions', args)).items.map((t) => t.id);
    expect(ids({ start_date: '2024-04-01', end_date: '2024-04-30' })).toEqual([5, 4, 3, 2]);
    expect(ids({ direction: 'sent', category: 'dining', start_date: '2024-04-01', end_date: '2024-04-30' })).toEqual([5, 2]);
    expect(failed(callApi(ctx, 'wallet.list_transactions', { start_date: '04/01/2024' })).error).toContain(
      'must be a date like 2024-05-18',
    );
  });
});

describe('mail', () => {
  it('replies to the sender with "Re:" and forwards with the original body below the message', () => {
    const ctx = makeContext({ auth: false });
    const inbox = first(ctx.world.tables.emails, (e) => e.folder === 'inbox');
    const { email_id: reply } = ok(callApi(ctx, 'mail.reply_to_email', { email_id: inbox.id, body: 'thanks' }));
    expect(ctx.world.tables.emails.find((e) => e.id === reply)).toMatchObject({
      folder: 'sent',
      to: inbox.from,
      subject: `Re: ${inbox.subject}`,
      body: 'thanks',
      read: true,
    });
    const { email_id: fwd } = ok(callApi(ctx, 'mail.forward_email', { email_id: inbox.id, to: 'z@mail.com', body: 'fyi' }));
    expect(ctx.world.tables.emails.find((e) => e.id === fwd)).toMatchObject({
      to: 'z@mail.com',
      subject: `Fwd: ${inbox.subject}`,
      body: `fyi\n\n${inbox.body}`,
    });
  });

  it('lists newest first and never marks an email read by showing it', () => {
    const ctx = makeContext({ auth: false, size: 'full' });
    const listed = ok<{ items: Array<{ sent_at: string }> }>(callApi(ctx, 'mail.list_emails', { page_size: 20 })).items;
    expect(listed.map((e) => e.sent_at)).toEqual([...listed.map((e) => e.sent_at)].sort().reverse());
    const unread = first(ctx.world.tables.emails, (e) => e.folder === 'inbox' && !e.read);
    ok(callApi(ctx, 'mail.show_email', { email_id: unread.id }));
    expect(unread.read).toBe(false);
    const sent = first(ctx.world.tables.emails, (e) => e.folder === 'sent');
    expect(failed(callApi(ctx, 'mail.mark_email_read', { email_id: sent.id })).status).toBe(422);
  });
});

describe('files', () => {
  it('moves into a folder keeping the name, and refuses taken targets and missing folders', () => {
    const ctx = makeContext({ auth: false });
    ctx.world.tables.directories = [
      { id: 1, path: '/a' },
      { id: 2, path: '/b' },
    ];
    ctx.world.tables.files = [
      { id: 1, path: '/a/x.txt', content: 'one', created_at: 't', updated_at: 't' },
      { id: 2, path: '/b/y.txt', content: 'two', created_at: 't', updated_at: 't' },
    ];
    expect(ok(callApi(ctx, 'files.move_file', { source_path: '/a/x.txt', destination_path: '/b' }))).toEqual({ path: '/b/x.txt' });
    expect(failed(callApi(ctx, 'files.move_file', { source_path: '/b/x.txt', destination_path: '/b/y.txt' }))).toEqual({
      status: 409,
      error: 'A file already exists at /b/y.txt.',
    });
    expect(failed(callApi(ctx, 'files.create_file', { path: '/c/z.txt' }))).toEqual({
      status: 404,
      error: 'Directory /c does not exist; create it with files.create_directory.',
    });
    expect(failed(callApi(ctx, 'files.show_file', { path: '/a' })).error).toBe('/a is a directory, not a file.');
    expect(failed(callApi(ctx, 'files.list_directory', { path: '/b/y.txt' })).status).toBe(422);
    expect(ok(callApi(ctx, 'files.list_directory', { path: '/' })).items).toEqual([
      { name: 'a', type: 'directory', path: '/a' },
      { name: 'b', type: 'directory', path: '/b' },
    ]);
    ok(callApi(ctx, 'files.create_file', { path: '/b/y.txt', content: 'new', overwrite: true }));
    expect(ctx.world.tables.files.find((f) => f.id === 2)!.content).toBe('new');
    expect(failed(callApi(ctx, 'files.show_file', { path: 'relative.txt' })).error).toContain('must be an absolute path');
  });
});

describe('notes, phone, calendar, todo', () => {
  it('refuses duplicate tags, duplicate phones, empty updates, backwards events and unknown lists', () => {
    const ctx = makeContext({ auth: false });
    const note = ctx.world.tables.notes[0];
    ok(callApi(ctx, 'notes.add_note_tag', { note_id: note.id, tag: 'zz' }));
    expect(failed(callApi(ctx, 'notes.add_note_tag', { note_id: note.id, tag: 'zz' }))).toEqual({
      status: 409,
      error: `Note ${note.id} already has the tag zz.`,
    });
    const contact = ctx.world.tables.contacts[0];
    expect(failed(callApi(ctx, 'phone.add_contact', { first_name: 'A', last_name: 'B', phone: contact.phone })).status).toBe(409);
    expect(failed(callApi(ctx, 'phone.update_contact', { contact_id: contact.id }))).toEqual({
      status: 422,
      error: 'Nothing to change: give at least one of first_name, last_name, phone, email, relationship.',
    });
    expect(
      failed(callApi(ctx, 'calendar.create_event', { title: 'x', start: '2024-01-02T10:00:00', end: '2024-01-02T09:00:00' })).status,
    ).toBe(422);
    const lists = ctx.world.tables.todo_lists.map((l) => l.name).join(', ');
    expect(failed(callApi(ctx, 'todo.create_todo', { title: 'x', list: 'nowhere' }))).toEqual({
      status: 404,
      error: `No to-do list named nowhere; lists: ${lists}.`,
    });
    expect(failed(callApi(ctx, 'notes.show_note', { note_id: 999 }))).toEqual({
      status: 404,
      error: 'Note with note_id 999 does not exist.',
    });
  });

  it('searches case-insensitively and completes a task once', () => {
    const ctx = makeContext({ auth: false });
    const contact = ctx.world.tables.contacts[0];
    const found = ok<{ items: Array<{ id: number }> }>(
      callApi(ctx, 'phone.search_contacts', { query: contact.first_name.toUpperCase() }),
    ).items;
    expect(found.map((c) => c.id)).toContain(contact.id);
    ok(callApi(ctx, 'supervisor.complete_task', { answer: 4 }));
    expect(ctx.session).toMatchObject({ completed: true, answer: 4 });
    expect(failed(callApi(ctx, 'supervisor.complete_task'))).toEqual({ status: 409, error: 'The task is already complete.' });
  });

  it('answers an unknown app or API with the valid names', () => {
    const ctx = makeContext();
    expect(failed(callApi(ctx, 'nots.list'))).toEqual({
      status: 404,
      error: expect.stringContaining('No app named nots; apps: supervisor, api_docs, phone, mail, notes, wallet, files, calendar, todo.'),
    });
    expect(failed(callApi(ctx, 'notes.list'))).toEqual({
      status: 404,
      error: 'App notes has no API named list; see api_docs.show_api_descriptions {"app_name":"notes"}.',
    });
  });
});
