/** `mail`: an email inbox and sent folder. Reading an email never changes it (only mark_email_read does). */
import { z } from 'zod';
import { ApiError, containsText, api, defineApp, fields, findById, paginate, removeById } from '../api.js';
import { allocateId, type Email } from '../world.js';
import { loginApi, newestFirst } from './common.js';

function summary(e: Email) {
  return { id: e.id, from: e.from, to: e.to, subject: e.subject, sent_at: e.sent_at, read: e.read };
}

/** The mail app. */
export const mailApp = defineApp({ name: 'mail', description: 'Your email: inbox and sent folder.', login: true }, [
  loginApi('mail'),
  api({
    name: 'list_emails',
    description: 'List the emails of a folder, newest first.',
    returns: '{items: [{id, from, to, subject, sent_at, read}], page, next_page}',
    args: {
      folder: z.enum(['inbox', 'sent']).default('inbox').describe('Which folder.'),
      unread_only: z.boolean().default(false).describe('Only unread emails.'),
    },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.emails.filter((e) => e.folder === args.folder && (!args.unread_only || !e.read));
      return paginate(newestFirst(rows, (e) => e.sent_at).map(summary), args);
    },
  }),
  api({
    name: 'show_email',
    description: 'Show one email with its body.',
    returns: '{id, folder, from, to, subject, body, sent_at, read}',
    args: { email_id: fields.id.describe('Id of the email.') },
    run(ctx, args) {
      return findById(ctx.world.tables.emails, args.email_id, 'Email', 'email_id');
    },
  }),
  api({
    name: 'search_emails',
    description: 'Find emails whose subject, body or address contains the query, newest first.',
    returns: '{items: [{id, from, to, subject, sent_at, read}], page, next_page}',
    args: {
      query: fields.text(100).describe('Text to look for (case-insensitive).'),
      folder: z.enum(['inbox', 'sent']).optional().describe('Only this folder.'),
    },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.emails.filter(
        (e) =>
          (args.folder === undefined || e.folder === args.folder) &&
          [e.subject, e.body, e.from, e.to].some((s) => containsText(s, args.query)),
      );
      return paginate(newestFirst(rows, (e) => e.sent_at).map(summary), args);
    },
  }),
  api({
    name: 'send_email',
    description: 'Send an email.',
    returns: '{email_id}',
    args: {
      to: fields.email.describe('Recipient email address.'),
      subject: fields.text(200).describe('Subject line.'),
      body: z.string().max(4000).default('').describe('Body text.'),
    },
    mutates: true,
    run(ctx, args) {
      return { email_id: sendEmail(ctx.world, args.to, args.subject, args.body) };
    },
  }),
  api({
    name: 'reply_to_email',
    description: 'Reply to an email (to its sender; "Re:" is added to the subject).',
    returns: '{email_id}',
    args: { email_id: fields.id.describe('Id of the email to reply to.'), body: fields.text(4000).describe('Body of the reply.') },
    mutates: true,
    run(ctx, args) {
      const original = findById(ctx.world.tables.emails, args.email_id, 'Email', 'email_id');
      const to = original.folder === 'inbox' ? original.from : original.to;
      const subject = original.subject.startsWith('Re: ') ? original.subject : `Re: ${original.subject}`;
      return { email_id: sendEmail(ctx.world, to, subject, args.body) };
    },
  }),
  api({
    name: 'forward_email',
    description: 'Forward an email, optionally with a message above it ("Fwd:" is added to the subject).',
    returns: '{email_id}',
    args: {
      email_id: fields.id.describe('Id of the email to forward.'),
      to: fields.email.describe('Recipient email address.'),
      body: z.string().max(4000).default('').describe('Message above the forwarded email.'),
    },
    mutates: true,
    run(ctx, args) {
      const original = findById(ctx.world.tables.emails, args.email_id, 'Email', 'email_id');
      const body = args.body ? `${args.body}\n\n${original.body}` : original.body;
      return { email_id: sendEmail(ctx.world, args.to, `Fwd: ${original.subject}`, body) };
    },
  }),
  api({
    name: 'delete_email',
    description: 'Delete an email.',
    returns: '{message}',
    args: { email_id: fields.id.describe('Id of the email.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.emails, args.email_id, 'Email', 'email_id');
      removeById(ctx.world.tables.emails, args.email_id);
      return { message: `Email ${args.email_id} deleted.` };
    },
  }),
  api({
    name: 'mark_email_read',
    description: 'Mark an email as read (or unread).',
    returns: '{message}',
    args: { email_id: fields.id.describe('Id of the email.'), read: z.boolean().default(true).describe('true = read, false = unread.') },
    mutates: true,
    run(ctx, args) {
      const email = findById(ctx.world.tables.emails, args.email_id, 'Email', 'email_id');
      if (email.folder !== 'inbox')
        throw new ApiError(422, `Email ${email.id} is in the sent folder; only received emails have a read state.`);
      email.read = args.read;
      return { message: `Email ${email.id} marked ${args.read ? 'read' : 'unread'}.` };
    },
  }),
]);

function sendEmail(world: import('../world.js').World, to: string, subject: string, body: string): number {
  if (to.toLowerCase() === world.supervisor.email) throw new ApiError(422, 'You cannot send an email to yourself.');
  const id = allocateId(world, 'emails');
  world.tables.emails.push({ id, folder: 'sent', from: world.supervisor.email, to, subject, body, sent_at: world.now, read: true });
  return id;
}
