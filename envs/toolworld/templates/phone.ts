/** Task templates of the phone app (contacts and texts). */
import type { SolverContext } from '../solver.js';
import { FIRST_NAMES, LAST_NAMES, RELATIONSHIPS, TEXT_MESSAGES, UNIQUE_RELATIONSHIPS } from '../vocab.js';
import { pick, type Contact } from '../world.js';
import { freshFrom, freshPhone, invoke, nameOf, plantText, q, recent, relativeContact, type TaskTemplate } from './template.js';

/** A contact as the phone APIs list it. */
export type ContactItem = Contact;

/** Search contacts by first name and take the one with the full name. */
export function* findContact(s: SolverContext, contact: Pick<Contact, 'first_name' | 'last_name'>) {
  const found = yield* s.listAll<ContactItem>(
    'phone',
    'search_contacts',
    { query: contact.first_name },
    (c) => nameOf(c) === nameOf(contact),
  );
  return s.choose(found, (c) => nameOf(c) === nameOf(contact));
}

/** The contact with a (unique) relationship. */
export function* findRelative(s: SolverContext, relationship: string) {
  const found = yield* s.listAll<ContactItem>('phone', 'list_contacts', { relationship });
  return s.choose(found, (c) => c.relationship === relationship);
}

/** The contact with an email address. */
export function* findByEmail(s: SolverContext, email: string) {
  const found = yield* s.listAll<ContactItem>('phone', 'search_contacts', { query: email }, (c) => c.email === email);
  return s.choose(found, (c) => c.email === email);
}

const SHARED_RELATIONSHIPS = RELATIONSHIPS.filter((r) => !UNIQUE_RELATIONSHIPS.includes(r));

export const phoneTemplates: TaskTemplate[] = [
  {
    name: 'phone_lookup_number',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: "What is Ana Diaz's phone number?",
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      return {
        instruction: `What is ${nameOf(contact)}'s phone number?`,
        answer: contact.phone,
        apis: ['phone.search_contacts'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([], found.phone);
        },
      };
    },
  },
  {
    name: 'phone_add_contact',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: 'Add Lea Moss (555-0142) to my contacts as a friend.',
    make(world, rng) {
      const first = freshFrom(rng, FIRST_NAMES, world.tables.contacts.map((c) => c.first_name).concat(world.supervisor.first_name));
      if (first === undefined) return undefined;
      const last = pick(rng, LAST_NAMES);
      const phone = freshPhone(world, rng);
      const relationship = pick(rng, SHARED_RELATIONSHIPS);
      const args = { first_name: first, last_name: last, phone, relationship };
      return {
        instruction: `Add ${first} ${last} (${phone}) to my contacts as a ${relationship}.`,
        apply: (w) => invoke(w, 'phone.add_contact', args),
        apis: ['phone.add_contact'],
        *solve(s) {
          yield* s.finish([s.api('phone', 'add_contact', { ...args, phone: s.copy(phone) })]);
        },
      };
    },
  },
  {
    name: 'phone_update_number',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: "Change Ben Kim's phone number to 555-0199.",
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const phone = freshPhone(world, rng);
      return {
        instruction: `Change ${nameOf(contact)}'s phone number to ${phone}.`,
        apply: (w) => invoke(w, 'phone.update_contact', { contact_id: contact.id, phone }),
        apis: ['phone.search_contacts', 'phone.update_contact'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('phone', 'update_contact', { contact_id: found.id, phone: s.copy(phone) })]);
        },
      };
    },
  },
  {
    name: 'phone_delete_contact',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: 'Delete Omar Tan from my contacts.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      return {
        instruction: `Delete ${nameOf(contact)} from my contacts.`,
        apply: (w) => invoke(w, 'phone.delete_contact', { contact_id: contact.id }),
        apis: ['phone.search_contacts', 'phone.delete_contact'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('phone', 'delete_contact', { contact_id: found.id })]);
        },
      };
    },
  },
  {
    name: 'phone_text_name',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: 'Text Eva Park "running late".',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const message = pick(rng, TEXT_MESSAGES);
      return {
        instruction: `Text ${nameOf(contact)} ${q(message)}.`,
        apply: (w) => invoke(w, 'phone.send_text', { phone_number: contact.phone, message }),
        apis: ['phone.search_contacts', 'phone.send_text'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('phone', 'send_text', { phone_number: found.phone, message: s.copy(message) })]);
        },
      };
    },
  },
  {
    name: 'phone_text_relative',
    apps: ['phone'],
    level: 2,
    group: 'normal',
    example: 'Text my sister "call me later".',
    make(world, rng) {
      const contact = relativeContact(world, rng);
      const message = pick(rng, TEXT_MESSAGES);
      return {
        instruction: `Text my ${contact.relationship} ${q(message)}.`,
        apply: (w) => invoke(w, 'phone.send_text', { phone_number: contact.phone, message }),
        apis: ['phone.list_contacts', 'phone.send_text'],
        *solve(s) {
          const found = yield* findRelative(s, contact.relationship);
          yield* s.finish([s.api('phone', 'send_text', { phone_number: found.phone, message: s.copy(message) })]);
        },
      };
    },
  },
  {
    name: 'phone_count_relationship',
    apps: ['phone'],
    level: 2,
    group: 'normal',
    example: 'How many of my contacts are coworkers?',
    make(world, rng) {
      const relationship = pick(rng, SHARED_RELATIONSHIPS);
      if (!world.tables.contacts.some((c) => c.relationship === relationship)) {
        const others = world.tables.contacts.filter((c) => !UNIQUE_RELATIONSHIPS.includes(c.relationship));
        if (others.length === 0) return undefined;
        pick(rng, others).relationship = relationship;
      }
      const count = world.tables.contacts.filter((c) => c.relationship === relationship).length;
      return {
        instruction: `How many of my contacts are ${relationship}s?`,
        answer: count,
        apis: ['phone.list_contacts'],
        *solve(s) {
          const all = yield* s.listAll<ContactItem>('phone', 'list_contacts', { relationship });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'phone_last_text_from',
    apps: ['phone'],
    level: 2,
    group: 'normal',
    example: 'What did Kai Ford last text me? Answer with the message.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const message = pick(rng, TEXT_MESSAGES);
      // The newest message of the world, so it is certainly this contact's latest.
      plantText(world, contact.phone, 'in', message, `${world.now.slice(0, 10)}T08:10:00`);
      return {
        instruction: `What did ${nameOf(contact)} last text me? Answer with the message.`,
        answer: message,
        apis: ['phone.search_contacts', 'phone.list_texts'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          const page = yield* s.get<{ items: Array<{ message: string }> }>('phone', 'list_texts', {
            phone_number: found.phone,
            direction: 'in',
            page_size: 1,
          });
          yield* s.finish([], page.items[0]?.message ?? '');
        },
      };
    },
  },
  {
    name: 'phone_delete_texts_with',
    apps: ['phone'],
    level: 2,
    group: 'normal',
    example: 'Delete all my text messages with Nia Lund.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      plantText(world, contact.phone, 'in', pick(rng, TEXT_MESSAGES), recent(rng, world, 10));
      plantText(world, contact.phone, 'out', pick(rng, TEXT_MESSAGES), recent(rng, world, 10));
      const doomed = world.tables.texts.filter((t) => t.phone_number === contact.phone).map((t) => t.id);
      return {
        instruction: `Delete all my text messages with ${nameOf(contact)}.`,
        apply: (w) => doomed.forEach((id) => invoke(w, 'phone.delete_text', { text_id: id })),
        apis: ['phone.search_contacts', 'phone.list_texts', 'phone.delete_text'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          const texts = yield* s.listAll<{ id: number }>('phone', 'list_texts', { phone_number: found.phone });
          const chosen = s.chooseAll(texts, () => true);
          yield* s.finish(chosen.map((t) => s.api('phone', 'delete_text', { text_id: t.id })));
        },
      };
    },
  },
  {
    name: 'phone_set_relationship',
    apps: ['phone'],
    level: 1,
    group: 'normal',
    example: 'Mark Gus Hale as a neighbor in my contacts.',
    make(world, rng) {
      const candidates = world.tables.contacts.filter((c) => !UNIQUE_RELATIONSHIPS.includes(c.relationship));
      if (candidates.length === 0) return undefined;
      const contact = pick(rng, candidates);
      const relationship = freshFrom(rng, SHARED_RELATIONSHIPS, [contact.relationship]);
      if (relationship === undefined) return undefined;
      return {
        instruction: `Mark ${nameOf(contact)} as a ${relationship} in my contacts.`,
        apply: (w) => invoke(w, 'phone.update_contact', { contact_id: contact.id, relationship }),
        apis: ['phone.search_contacts', 'phone.update_contact'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('phone', 'update_contact', { contact_id: found.id, relationship: s.copy(relationship) })]);
        },
      };
    },
  },
];
