/** Task templates of the mail app (some with the phone app for addresses). */
import type { Rng } from '../../../core/rng.js';
import type { SolverContext } from '../solver.js';
import { EMAIL_SUBJECTS, TEXT_MESSAGES } from '../vocab.js';
import { pick, type World } from '../world.js';
import { findByEmail, findContact, findRelative } from './phone.js';
import { invoke, nameOf, plantEmail, q, recent, relativeContact, type TaskTemplate } from './template.js';

interface EmailItem {
  id: number;
  from: string;
  to: string;
  subject: string;
  read: boolean;
}

/** A subject no email of the world has (`Invoice 42`). */
export function freshSubject(world: World, rng: Rng): string {
  for (;;) {
    const subject = `${pick(rng, EMAIL_SUBJECTS)} ${10 + rng.int(90)}`;
    if (!world.tables.emails.some((e) => e.subject === subject)) return subject;
  }
}

/** The newest inbox email from `email` (search is newest first). */
export function* latestFrom(s: SolverContext, email: string) {
  const found = yield* s.listAll<EmailItem>('mail', 'search_emails', { query: email, folder: 'inbox' }, (e) => e.from === email);
  return s.choose(found, (e) => e.from === email);
}

/** The inbox email with exactly this subject. */
export function* emailWithSubject(s: SolverContext, subject: string) {
  const found = yield* s.listAll<EmailItem>('mail', 'search_emails', { query: subject, folder: 'inbox' }, (e) => e.subject === subject);
  return s.choose(found, (e) => e.subject === subject);
}

/** Plant the newest inbox email of the world (this morning, before "now"). */
export function plantLatestEmail(world: World, rng: Rng, from: string, subject: string): number {
  return plantEmail(world, from, subject, pick(rng, TEXT_MESSAGES), `${world.now.slice(0, 10)}T08:20:00`, false);
}

export const mailTemplates: TaskTemplate[] = [
  {
    name: 'mail_send',
    apps: ['phone', 'mail'],
    level: 2,
    group: 'normal',
    example: 'Email Ana Diaz with the subject "Party" and the text "see you soon".',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const subject = pick(rng, EMAIL_SUBJECTS);
      const body = pick(rng, TEXT_MESSAGES);
      return {
        instruction: `Email ${nameOf(contact)} with the subject ${q(subject)} and the text ${q(body)}.`,
        apply: (w) => invoke(w, 'mail.send_email', { to: contact.email, subject, body }),
        apis: ['phone.search_contacts', 'mail.send_email'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('mail', 'send_email', { to: found.email, subject, body: s.copy(body) })]);
        },
      };
    },
  },
  {
    name: 'mail_count_unread',
    apps: ['mail'],
    level: 2,
    group: 'normal',
    example: 'How many unread emails do I have?',
    make(world, rng) {
      plantEmail(
        world,
        pick(rng, world.tables.contacts).email,
        pick(rng, EMAIL_SUBJECTS),
        pick(rng, TEXT_MESSAGES),
        recent(rng, world, 5),
        false,
      );
      const count = world.tables.emails.filter((e) => e.folder === 'inbox' && !e.read).length;
      return {
        instruction: 'How many unread emails do I have?',
        answer: count,
        apis: ['mail.list_emails'],
        *solve(s) {
          const all = yield* s.listAll<EmailItem>('mail', 'list_emails', { unread_only: true });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'mail_latest_subject_from',
    apps: ['mail'],
    level: 2,
    group: 'normal',
    example: 'What is the subject of the latest email from ana.diaz@mail.com?',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const subject = pick(rng, EMAIL_SUBJECTS);
      plantLatestEmail(world, rng, contact.email, subject);
      return {
        instruction: `What is the subject of the latest email from ${contact.email}?`,
        answer: subject,
        apis: ['mail.search_emails'],
        *solve(s) {
          const latest = yield* latestFrom(s, contact.email);
          yield* s.finish([], latest.subject);
        },
      };
    },
  },
  {
    name: 'mail_delete_from',
    apps: ['mail'],
    level: 2,
    group: 'normal',
    example: 'Delete all emails I received from ben.kim@mail.com.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      for (let i = 0; i < 2; i++)
        plantEmail(world, contact.email, pick(rng, EMAIL_SUBJECTS), pick(rng, TEXT_MESSAGES), recent(rng, world, 20), true);
      const doomed = world.tables.emails.filter((e) => e.folder === 'inbox' && e.from === contact.email).map((e) => e.id);
      return {
        instruction: `Delete all emails I received from ${contact.email}.`,
        apply: (w) => doomed.forEach((id) => invoke(w, 'mail.delete_email', { email_id: id })),
        apis: ['mail.search_emails', 'mail.delete_email'],
        *solve(s) {
          const found = yield* s.listAll<EmailItem>('mail', 'search_emails', { query: contact.email, folder: 'inbox' });
          const chosen = s.chooseAll(found, (e) => e.from === contact.email);
          yield* s.finish(chosen.map((e) => s.api('mail', 'delete_email', { email_id: e.id })));
        },
      };
    },
  },
  {
    name: 'mail_mark_all_read',
    apps: ['mail'],
    level: 2,
    group: 'normal',
    example: 'Mark all my unread emails as read.',
    make(world, rng) {
      plantEmail(
        world,
        pick(rng, world.tables.contacts).email,
        pick(rng, EMAIL_SUBJECTS),
        pick(rng, TEXT_MESSAGES),
        recent(rng, world, 5),
        false,
      );
      const unread = world.tables.emails.filter((e) => e.folder === 'inbox' && !e.read).map((e) => e.id);
      return {
        instruction: 'Mark all my unread emails as read.',
        apply: (w) => unread.forEach((id) => invoke(w, 'mail.mark_email_read', { email_id: id })),
        apis: ['mail.list_emails', 'mail.mark_email_read'],
        *solve(s) {
          const all = yield* s.listAll<EmailItem>('mail', 'list_emails', { unread_only: true });
          const chosen = s.chooseAll(all, () => true);
          yield* s.finish(chosen.map((e) => s.api('mail', 'mark_email_read', { email_id: e.id })));
        },
      };
    },
  },
  {
    name: 'mail_reply_latest',
    apps: ['mail'],
    level: 2,
    group: 'normal',
    example: 'Reply "sounds great" to the latest email from eva.park@mail.com.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const emailId = plantLatestEmail(world, rng, contact.email, pick(rng, EMAIL_SUBJECTS));
      const body = pick(rng, TEXT_MESSAGES);
      return {
        instruction: `Reply ${q(body)} to the latest email from ${contact.email}.`,
        apply: (w) => invoke(w, 'mail.reply_to_email', { email_id: emailId, body }),
        apis: ['mail.search_emails', 'mail.reply_to_email'],
        *solve(s) {
          const latest = yield* latestFrom(s, contact.email);
          yield* s.finish([s.api('mail', 'reply_to_email', { email_id: latest.id, body: s.copy(body) })]);
        },
      };
    },
  },
  {
    name: 'mail_forward_to_relative',
    apps: ['mail', 'phone'],
    level: 3,
    group: 'normal',
    example: 'Forward the email "Tickets 42" to my brother.',
    make(world, rng) {
      const relative = relativeContact(world, rng);
      const sender = pick(rng, world.tables.contacts);
      const subject = freshSubject(world, rng);
      const emailId = plantEmail(world, sender.email, subject, pick(rng, TEXT_MESSAGES), recent(rng, world, 10), true);
      return {
        instruction: `Forward the email ${q(subject)} to my ${relative.relationship}.`,
        apply: (w) => invoke(w, 'mail.forward_email', { email_id: emailId, to: relative.email }),
        apis: ['mail.search_emails', 'phone.list_contacts', 'mail.forward_email'],
        *solve(s) {
          const email = yield* emailWithSubject(s, subject);
          const to = yield* findRelative(s, relative.relationship);
          yield* s.finish([s.api('mail', 'forward_email', { email_id: email.id, to: to.email })]);
        },
      };
    },
  },
  {
    name: 'mail_sender_name',
    apps: ['mail', 'phone'],
    level: 2,
    group: 'normal',
    example: 'Who sent me the email "Report 17"? Answer with their full name.',
    make(world, rng) {
      const sender = pick(rng, world.tables.contacts);
      const subject = freshSubject(world, rng);
      plantEmail(world, sender.email, subject, pick(rng, TEXT_MESSAGES), recent(rng, world, 10), true);
      return {
        instruction: `Who sent me the email ${q(subject)}? Answer with their full name.`,
        answer: nameOf(sender),
        apis: ['mail.search_emails', 'phone.search_contacts'],
        *solve(s) {
          const email = yield* emailWithSubject(s, subject);
          const contact = yield* findByEmail(s, email.from);
          yield* s.finish([], nameOf(contact));
        },
      };
    },
  },
];
