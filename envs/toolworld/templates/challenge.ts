/**
 * test-challenge templates: the todo app, which no normal template uses (unseen in training), and
 * compositions of apps that no normal template combines (wallet + mail, mail + notes, phone + files,
 * calendar + wallet, calendar + notes + phone, mail + calendar, calendar + todo, notes + todo).
 */
import type { SolverContext } from '../solver.js';
import { CATEGORIES, NOTE_TITLES, TEXT_MESSAGES, TODO_TITLES } from '../vocab.js';
import { addDays, allocateId, pick, randomAmount, sample, type World } from '../world.js';
import { findEvent, plantUniqueEvent, type EventItem } from './calendar.js';
import { freshNamedFilePath } from './files.js';
import { freshSubject, latestFrom, plantLatestEmail } from './mail.js';
import { findByEmail, findContact, findRelative } from './phone.js';
import { freshFrom, invoke, nameOf, plantNote, plantText, q, recent, relativeContact, type TaskTemplate } from './template.js';
import { plantCategorySpending, spentLastMonth, sumLastMonth } from './wallet.js';

interface TodoItem {
  id: number;
  title: string;
  list: string;
  done: boolean;
}

/** A to-do list name of the world. */
function someList(world: World, rng: import('../../../core/rng.js').Rng): string {
  return pick(rng, world.tables.todo_lists).name;
}

/** A to-do title nobody uses yet. */
function freshTodoTitle(world: World, rng: import('../../../core/rng.js').Rng): string | undefined {
  return freshFrom(
    rng,
    TODO_TITLES,
    world.tables.todos.map((t) => t.title),
  );
}

/** The to-do with this exact title. */
function* findTodo(s: SolverContext, title: string) {
  const all = yield* s.listAll<TodoItem>('todo', 'list_todos', {}, (t) => t.title === title);
  return s.choose(all, (t) => t.title === title);
}

export const challengeTemplates: TaskTemplate[] = [
  {
    name: 'todo_create',
    apps: ['todo'],
    level: 1,
    group: 'challenge',
    example: 'Add "fix sink" to my "home" to-do list, due 2024-05-25.',
    make(world, rng) {
      const title = freshTodoTitle(world, rng);
      if (title === undefined) return undefined;
      const list = someList(world, rng);
      const due = addDays(world.now, 1 + rng.int(14));
      return {
        instruction: `Add ${q(title)} to my ${q(list)} to-do list, due ${due}.`,
        apply: (w) => invoke(w, 'todo.create_todo', { title, list, due_date: due }),
        apis: ['todo.create_todo'],
        *solve(s) {
          yield* s.finish([s.api('todo', 'create_todo', { title: s.copy(title), list, due_date: due })]);
        },
      };
    },
  },
  {
    name: 'todo_mark_done',
    apps: ['todo'],
    level: 1,
    group: 'challenge',
    example: 'Mark my to-do "walk dog" as done.',
    make(world, rng) {
      const open = world.tables.todos.filter((t) => !t.done);
      if (open.length === 0) return undefined;
      const todo = pick(rng, open);
      return {
        instruction: `Mark my to-do ${q(todo.title)} as done.`,
        apply: (w) => invoke(w, 'todo.mark_todo_done', { todo_id: todo.id }),
        apis: ['todo.list_todos', 'todo.mark_todo_done'],
        *solve(s) {
          const found = yield* findTodo(s, todo.title);
          yield* s.finish([s.api('todo', 'mark_todo_done', { todo_id: found.id })]);
        },
      };
    },
  },
  {
    name: 'todo_count_open',
    apps: ['todo'],
    level: 2,
    group: 'challenge',
    example: 'How many open to-dos are in my "work" list?',
    make(world, rng) {
      const list = someList(world, rng);
      const title = freshTodoTitle(world, rng);
      if (title === undefined) return undefined;
      world.tables.todos.push({
        id: allocateId(world, 'todos'),
        title,
        list,
        due_date: null,
        done: false,
        created_at: recent(rng, world, 5),
      });
      const count = world.tables.todos.filter((t) => t.list === list && !t.done).length;
      return {
        instruction: `How many open to-dos are in my ${q(list)} list?`,
        answer: count,
        apis: ['todo.list_todos'],
        *solve(s) {
          const all = yield* s.listAll<TodoItem>('todo', 'list_todos', { list, done: false });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'todo_delete_done',
    apps: ['todo'],
    level: 2,
    group: 'challenge',
    example: 'Delete all my finished to-dos.',
    make(world, rng) {
      const title = freshTodoTitle(world, rng);
      if (title === undefined) return undefined;
      world.tables.todos.push({
        id: allocateId(world, 'todos'),
        title,
        list: someList(world, rng),
        due_date: null,
        done: true,
        created_at: recent(rng, world, 5),
      });
      const doomed = world.tables.todos.filter((t) => t.done).map((t) => t.id);
      return {
        instruction: 'Delete all my finished to-dos.',
        apply: (w) => doomed.forEach((todo_id) => invoke(w, 'todo.delete_todo', { todo_id })),
        apis: ['todo.list_todos', 'todo.delete_todo'],
        *solve(s) {
          const all = yield* s.listAll<TodoItem>('todo', 'list_todos', { done: true });
          const chosen = s.chooseAll(all, (t) => t.done);
          yield* s.finish(chosen.map((t) => s.api('todo', 'delete_todo', { todo_id: t.id })));
        },
      };
    },
  },
  {
    name: 'todo_from_events',
    apps: ['calendar', 'todo'],
    level: 3,
    group: 'challenge',
    example: 'For each of my events on 2024-05-22, add a to-do with the same title to my "work" list, due that day.',
    make(world, rng) {
      const day = addDays(world.now, 2 + rng.int(6));
      if (plantUniqueEvent(world, rng, day) === undefined) return undefined;
      const list = someList(world, rng);
      const titles = world.tables.events.filter((e) => e.start.slice(0, 10) === day).map((e) => e.title);
      return {
        instruction: `For each of my events on ${day}, add a to-do with the same title to my ${q(list)} list, due that day.`,
        apply: (w) => titles.forEach((title) => invoke(w, 'todo.create_todo', { title, list, due_date: day })),
        apis: ['calendar.list_events', 'todo.create_todo'],
        *solve(s) {
          const events = yield* s.listAll<EventItem>('calendar', 'list_events', { start_date: day, end_date: day });
          const chosen = s.chooseAll(events, () => true);
          yield* s.finish(chosen.map((e) => s.api('todo', 'create_todo', { title: e.title, list, due_date: day })));
        },
      };
    },
  },
  {
    name: 'todo_from_note',
    apps: ['notes', 'todo'],
    level: 3,
    group: 'challenge',
    example: 'Add each line of my note "chores" as a to-do in my "home" list.',
    make(world, rng) {
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (title === undefined) return undefined;
      const lines = sample(
        rng,
        TODO_TITLES.filter((t) => !world.tables.todos.some((todo) => todo.title === t)),
        2 + rng.int(2),
      );
      plantNote(world, title, lines.join('\n'), [], recent(rng, world, 10));
      const list = someList(world, rng);
      return {
        instruction: `Add each line of my note ${q(title)} as a to-do in my ${q(list)} list.`,
        apply: (w) => lines.forEach((line) => invoke(w, 'todo.create_todo', { title: line, list })),
        apis: ['notes.search_notes', 'notes.show_note', 'todo.create_todo'],
        *solve(s) {
          const found = yield* s.listAll<{ id: number; title: string }>(
            'notes',
            'search_notes',
            { query: title },
            (n) => n.title === title,
          );
          const note = s.choose(found, (n) => n.title === title);
          const full = yield* s.get<{ content: string }>('notes', 'show_note', { note_id: note.id });
          const items = s.chooseAll(
            full.content.split('\n').filter((l) => l.trim() !== ''),
            () => true,
          );
          yield* s.finish(items.map((line) => s.api('todo', 'create_todo', { title: line, list })));
        },
      };
    },
  },
  {
    name: 'mail_spending_total',
    apps: ['wallet', 'phone', 'mail'],
    level: 3,
    group: 'challenge',
    example: 'Email my sister the total I spent on dining last month: subject "dining total", text just the amount like 12.50.',
    make(world, rng) {
      const relative = relativeContact(world, rng);
      const category = pick(rng, CATEGORIES);
      plantCategorySpending(world, rng, category);
      const body = spentLastMonth(world, category).toFixed(2);
      const subject = `${category} total`;
      return {
        instruction: `Email my ${relative.relationship} the total I spent on ${category} last month: subject ${q(subject)}, text just the amount like 12.50.`,
        apply: (w) => invoke(w, 'mail.send_email', { to: relative.email, subject, body }),
        apis: ['wallet.list_transactions', 'phone.list_contacts', 'mail.send_email'],
        *solve(s) {
          const total = yield* sumLastMonth(s, world, category);
          const to = yield* findRelative(s, relative.relationship);
          yield* s.finish([s.api('mail', 'send_email', { to: to.email, subject, body: s.copy(total.toFixed(2)) })]);
        },
      };
    },
  },
  {
    name: 'note_from_email',
    apps: ['mail', 'notes'],
    level: 3,
    group: 'challenge',
    example: 'Save the text of the latest email from ana.diaz@mail.com as a note titled "from ana".',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      plantLatestEmail(world, rng, contact.email, freshSubject(world, rng));
      const body = world.tables.emails[world.tables.emails.length - 1].body;
      const title = `from ${contact.first_name.toLowerCase()}`;
      return {
        instruction: `Save the text of the latest email from ${contact.email} as a note titled ${q(title)}.`,
        apply: (w) => invoke(w, 'notes.create_note', { title, content: body }),
        apis: ['mail.search_emails', 'mail.show_email', 'notes.create_note'],
        *solve(s) {
          const latest = yield* latestFrom(s, contact.email);
          const email = yield* s.get<{ body: string }>('mail', 'show_email', { email_id: latest.id });
          yield* s.finish([s.api('notes', 'create_note', { title: s.copy(title), content: email.body })]);
        },
      };
    },
  },
  {
    name: 'file_from_texts',
    apps: ['phone', 'files'],
    level: 3,
    group: 'challenge',
    example: 'Save the texts Ana Diaz sent me to a new file /docs/ana.txt, one per line, oldest first.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      plantText(world, contact.phone, 'in', pick(rng, TEXT_MESSAGES), recent(rng, world, 10));
      const path = freshNamedFilePath(world, rng, contact.first_name.toLowerCase());
      if (path === undefined) return undefined;
      const content = world.tables.texts
        .filter((t) => t.phone_number === contact.phone && t.direction === 'in')
        .sort((a, b) => (a.sent_at === b.sent_at ? a.id - b.id : a.sent_at < b.sent_at ? -1 : 1))
        .map((t) => t.message)
        .join('\n');
      return {
        instruction: `Save the texts ${nameOf(contact)} sent me to a new file ${path}, one per line, oldest first.`,
        apply: (w) => invoke(w, 'files.create_file', { path, content }),
        apis: ['phone.search_contacts', 'phone.list_texts', 'files.create_file'],
        *solve(s) {
          const person = yield* findContact(s, contact);
          const texts = yield* s.listAll<{ id: number; message: string; sent_at: string }>('phone', 'list_texts', {
            phone_number: person.phone,
            direction: 'in',
          });
          const oldestFirst = [...texts].reverse();
          yield* s.finish([s.api('files', 'create_file', { path, content: oldestFirst.map((t) => t.message).join('\n') })]);
        },
      };
    },
  },
  {
    name: 'pay_event_attendees',
    apps: ['calendar', 'wallet'],
    level: 3,
    group: 'challenge',
    example: 'Send $15.00 to each person invited to my "Picnic" event, with the note "Picnic".',
    make(world, rng) {
      const people = sample(rng, world.tables.contacts, 1 + rng.int(2)).map((c) => c.email);
      const event = plantUniqueEvent(world, rng, undefined, people);
      if (event === undefined) return undefined;
      const amount = Math.round(randomAmount(rng, 5, 30));
      return {
        instruction: `Send $${amount.toFixed(2)} to each person invited to my ${q(event.title)} event, with the note ${q(event.title)}.`,
        apply: (w) => people.forEach((to_email) => invoke(w, 'wallet.send_money', { to_email, amount, note: event.title })),
        apis: ['calendar.list_events', 'calendar.show_event', 'wallet.send_money'],
        *solve(s) {
          const found = yield* findEvent(s, event.title);
          const full = yield* s.get<{ attendees: string[] }>('calendar', 'show_event', { event_id: found.id });
          const chosen = s.chooseAll(full.attendees, () => true);
          yield* s.finish(chosen.map((to_email) => s.api('wallet', 'send_money', { to_email, amount, note: event.title })));
        },
      };
    },
  },
  {
    name: 'text_event_attendees_note',
    apps: ['calendar', 'notes', 'phone'],
    level: 3,
    group: 'challenge',
    example: 'Text everyone invited to my "Recital" event the text of my note "reminder".',
    make(world, rng) {
      const people = sample(rng, world.tables.contacts, 1 + rng.int(2));
      const event = plantUniqueEvent(
        world,
        rng,
        undefined,
        people.map((c) => c.email),
      );
      const title = freshFrom(
        rng,
        NOTE_TITLES,
        world.tables.notes.map((n) => n.title),
      );
      if (event === undefined || title === undefined) return undefined;
      const message = pick(rng, TEXT_MESSAGES);
      plantNote(world, title, message, [], recent(rng, world, 10));
      return {
        instruction: `Text everyone invited to my ${q(event.title)} event the text of my note ${q(title)}.`,
        apply: (w) => people.forEach((c) => invoke(w, 'phone.send_text', { phone_number: c.phone, message })),
        apis: [
          'calendar.list_events',
          'calendar.show_event',
          'notes.search_notes',
          'notes.show_note',
          'phone.search_contacts',
          'phone.send_text',
        ],
        *solve(s) {
          const found = yield* findEvent(s, event.title);
          const full = yield* s.get<{ attendees: string[] }>('calendar', 'show_event', { event_id: found.id });
          const notes = yield* s.listAll<{ id: number; title: string }>(
            'notes',
            'search_notes',
            { query: title },
            (n) => n.title === title,
          );
          const note = yield* s.get<{ content: string }>('notes', 'show_note', { note_id: s.choose(notes, (n) => n.title === title).id });
          const phones: string[] = [];
          for (const email of full.attendees) phones.push((yield* findByEmail(s, email)).phone);
          yield* s.finish(
            s.chooseAll(phones, () => true).map((phone_number) => s.api('phone', 'send_text', { phone_number, message: note.content })),
          );
        },
      };
    },
  },
  {
    name: 'event_from_email',
    apps: ['mail', 'calendar'],
    level: 3,
    group: 'challenge',
    example: 'Add an event on 2024-05-24 from 10:00 to 11:00 titled like the subject of the latest email from ana.diaz@mail.com.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const subject = freshSubject(world, rng);
      plantLatestEmail(world, rng, contact.email, subject);
      const day = addDays(world.now, 1 + rng.int(10));
      const start = `${day}T10:00:00`;
      const end = `${day}T11:00:00`;
      return {
        instruction: `Add an event on ${day} from 10:00 to 11:00 titled like the subject of the latest email from ${contact.email}.`,
        apply: (w) => invoke(w, 'calendar.create_event', { title: subject, start, end }),
        apis: ['mail.search_emails', 'calendar.create_event'],
        *solve(s) {
          const latest = yield* latestFrom(s, contact.email);
          yield* s.finish([s.api('calendar', 'create_event', { title: s.copy(latest.subject), start, end })]);
        },
      };
    },
  },
];
