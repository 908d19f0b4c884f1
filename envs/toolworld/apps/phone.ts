/** `phone`: contacts and text messages. */
import { z } from 'zod';
import { ApiError, containsText, api, defineApp, fields, findById, paginate, removeById } from '../api.js';
import { allocateId, fullName, type Contact } from '../world.js';
import { RELATIONSHIPS } from '../vocab.js';
import { loginApi, newestFirst, requireSomeField } from './common.js';

const relationship = z.enum(['other', ...RELATIONSHIPS] as [string, ...string[]]);

function byName(a: Contact, b: Contact): number {
  return fullName(a).localeCompare(fullName(b)) || a.id - b.id;
}

/** The phone app. */
export const phoneApp = defineApp({ name: 'phone', description: 'Your contacts and text messages.', login: true }, [
  loginApi('phone'),
  api({
    name: 'list_contacts',
    description: 'List your contacts by name, optionally only those with a relationship.',
    returns: '{items: [{id, first_name, last_name, phone, email, relationship}], page, next_page}',
    args: { relationship: relationship.optional().describe('Only contacts with this relationship (sister, friend, …).') },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.contacts.filter((c) => args.relationship === undefined || c.relationship === args.relationship);
      return paginate([...rows].sort(byName), args);
    },
  }),
  api({
    name: 'show_contact',
    description: 'Show one contact.',
    returns: '{id, first_name, last_name, phone, email, relationship}',
    args: { contact_id: fields.id.describe('Id of the contact.') },
    run(ctx, args) {
      return findById(ctx.world.tables.contacts, args.contact_id, 'Contact', 'contact_id');
    },
  }),
  api({
    name: 'search_contacts',
    description: 'Find contacts whose name, email or phone contains the query.',
    returns: '{items: [{id, first_name, last_name, phone, email, relationship}], page, next_page}',
    args: { query: fields.text(100).describe('Text to look for (case-insensitive).') },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.contacts.filter((c) => [fullName(c), c.email, c.phone].some((s) => containsText(s, args.query)));
      return paginate([...rows].sort(byName), args);
    },
  }),
  api({
    name: 'add_contact',
    description: 'Add a contact.',
    returns: '{contact_id}',
    args: {
      first_name: fields.text(40).describe('First name.'),
      last_name: fields.text(40).describe('Last name.'),
      phone: fields.phone.describe('Phone number, 555-NNNN.'),
      email: fields.email.optional().describe('Email address.'),
      relationship: relationship.default('other').describe('How they are related to you.'),
    },
    mutates: true,
    run(ctx, args) {
      const { contacts } = ctx.world.tables;
      const clash = contacts.find((c) => c.phone === args.phone);
      if (clash) throw new ApiError(409, `A contact with phone ${args.phone} already exists (contact_id ${clash.id}).`);
      const id = allocateId(ctx.world, 'contacts');
      contacts.push({
        id,
        first_name: args.first_name,
        last_name: args.last_name,
        email: args.email ?? '',
        phone: args.phone,
        relationship: args.relationship,
      });
      return { contact_id: id };
    },
  }),
  api({
    name: 'update_contact',
    description: 'Change fields of a contact.',
    returns: '{message}',
    args: {
      contact_id: fields.id.describe('Id of the contact.'),
      first_name: fields.text(40).optional().describe('New first name.'),
      last_name: fields.text(40).optional().describe('New last name.'),
      phone: fields.phone.optional().describe('New phone number.'),
      email: fields.email.optional().describe('New email address.'),
      relationship: relationship.optional().describe('New relationship.'),
    },
    mutates: true,
    run(ctx, args) {
      requireSomeField(args, ['first_name', 'last_name', 'phone', 'email', 'relationship']);
      const contact = findById(ctx.world.tables.contacts, args.contact_id, 'Contact', 'contact_id');
      if (args.phone !== undefined) {
        const clash = ctx.world.tables.contacts.find((c) => c.phone === args.phone && c.id !== contact.id);
        if (clash) throw new ApiError(409, `Phone ${args.phone} already belongs to contact_id ${clash.id}.`);
      }
      for (const key of ['first_name', 'last_name', 'phone', 'email', 'relationship'] as const) {
        if (args[key] !== undefined) contact[key] = args[key] as string;
      }
      return { message: `Contact ${contact.id} updated.` };
    },
  }),
  api({
    name: 'delete_contact',
    description: 'Delete a contact.',
    returns: '{message}',
    args: { contact_id: fields.id.describe('Id of the contact.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.contacts, args.contact_id, 'Contact', 'contact_id');
      removeById(ctx.world.tables.contacts, args.contact_id);
      return { message: `Contact ${args.contact_id} deleted.` };
    },
  }),
  api({
    name: 'send_text',
    description: 'Send a text message to a phone number.',
    returns: '{text_id}',
    args: {
      phone_number: fields.phone.describe('Recipient, 555-NNNN.'),
      message: fields.text(500).describe('The message.'),
    },
    mutates: true,
    run(ctx, args) {
      const id = allocateId(ctx.world, 'texts');
      ctx.world.tables.texts.push({ id, phone_number: args.phone_number, direction: 'out', message: args.message, sent_at: ctx.world.now });
      return { text_id: id };
    },
  }),
  api({
    name: 'list_texts',
    description: 'List text messages, newest first, optionally with one number or one direction.',
    returns: '{items: [{id, phone_number, direction, message, sent_at}], page, next_page}',
    args: {
      phone_number: fields.phone.optional().describe('Only messages to or from this number.'),
      direction: z.enum(['in', 'out']).optional().describe('in = received, out = sent.'),
    },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.texts.filter(
        (t) =>
          (args.phone_number === undefined || t.phone_number === args.phone_number) &&
          (args.direction === undefined || t.direction === args.direction),
      );
      return paginate(
        newestFirst(rows, (t) => t.sent_at),
        args,
      );
    },
  }),
  api({
    name: 'show_text',
    description: 'Show one text message.',
    returns: '{id, phone_number, direction, message, sent_at}',
    args: { text_id: fields.id.describe('Id of the message.') },
    run(ctx, args) {
      return findById(ctx.world.tables.texts, args.text_id, 'Text message', 'text_id');
    },
  }),
  api({
    name: 'delete_text',
    description: 'Delete a text message.',
    returns: '{message}',
    args: { text_id: fields.id.describe('Id of the message.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.texts, args.text_id, 'Text message', 'text_id');
      removeById(ctx.world.tables.texts, args.text_id);
      return { message: `Text ${args.text_id} deleted.` };
    },
  }),
]);
