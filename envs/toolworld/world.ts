/**
 * The toolworld state: a small relational database owned by one person (the supervisor), generated from a
 * seed (spec "Shape"). Every table is an array of rows with a unique integer `id`, so the checks can diff
 * any two states table by table, row by row. Units: money in dollars with two decimals; times are ISO
 * strings without a zone (`YYYY-MM-DDTHH:MM:SS`), dates `YYYY-MM-DD`; both compare lexicographically.
 */
import { Rng } from '../../core/rng.js';
import {
  CATEGORIES,
  DIRECTORIES,
  EMAIL_SUBJECTS,
  EVENT_TITLES,
  FILE_STEMS,
  FIRST_NAMES,
  LAST_NAMES,
  LOCATIONS,
  NOTE_TITLES,
  NOTE_WORDS,
  RELATIONSHIPS,
  TAGS,
  TEXT_MESSAGES,
  TODO_LISTS,
  TODO_TITLES,
  UNIQUE_RELATIONSHIPS,
} from './vocab.js';

/** A person in the supervisor's phone book. */
export interface Contact {
  readonly id: number;
  first_name: string;
  last_name: string;
  email: string;
  /** `555-NNNN`. */
  phone: string;
  /** `sister`, `friend`, … or `other`. */
  relationship: string;
}

/** A text message to (`out`) or from (`in`) a phone number. */
export interface TextMessage {
  readonly id: number;
  phone_number: string;
  direction: 'in' | 'out';
  message: string;
  sent_at: string;
}

/** An email in the inbox (received) or the sent folder. */
export interface Email {
  readonly id: number;
  folder: 'inbox' | 'sent';
  from: string;
  to: string;
  subject: string;
  body: string;
  sent_at: string;
  read: boolean;
}

/** A note with free-text content and tags. */
export interface Note {
  readonly id: number;
  title: string;
  content: string;
  tags: string[];
  created_at: string;
  updated_at: string;
}

/** A wallet payment: `sent` is money the supervisor spent, `received` money that came in. */
export interface Transaction {
  readonly id: number;
  direction: 'sent' | 'received';
  /** The other party's email. */
  email: string;
  /** Dollars, > 0, two decimals. */
  amount: number;
  category: string;
  note: string;
  created_at: string;
}

/** A request for money: `incoming` asks the supervisor to pay, `outgoing` asks someone else. */
export interface MoneyRequest {
  readonly id: number;
  direction: 'incoming' | 'outgoing';
  email: string;
  amount: number;
  note: string;
  status: 'pending' | 'approved' | 'declined';
  created_at: string;
}

/** The wallet account (one row, id 1). */
export interface WalletAccount {
  readonly id: number;
  balance: number;
}

/** A file; its folder is everything before the last `/` of its path. */
export interface FileEntry {
  readonly id: number;
  path: string;
  content: string;
  created_at: string;
  updated_at: string;
}

/** A folder of the file system (`/` itself is implicit). */
export interface Directory {
  readonly id: number;
  path: string;
}

/** A calendar event; attendees are email addresses. */
export interface CalendarEvent {
  readonly id: number;
  title: string;
  start: string;
  end: string;
  location: string;
  attendees: string[];
}

/** A named to-do list. */
export interface TodoList {
  readonly id: number;
  name: string;
}

/** A to-do item. */
export interface Todo {
  readonly id: number;
  title: string;
  list: string;
  due_date: string | null;
  done: boolean;
  created_at: string;
}

/** Row types by table name. */
export interface Tables {
  contacts: Contact[];
  texts: TextMessage[];
  emails: Email[];
  notes: Note[];
  transactions: Transaction[];
  money_requests: MoneyRequest[];
  wallet: WalletAccount[];
  files: FileEntry[];
  directories: Directory[];
  events: CalendarEvent[];
  todo_lists: TodoList[];
  todos: Todo[];
}

/** Name of a table. */
export type TableName = keyof Tables;

/** Every table, in a fixed order (diffs and reports list them in this order). */
export const TABLE_NAMES: readonly TableName[] = [
  'contacts',
  'texts',
  'emails',
  'notes',
  'transactions',
  'money_requests',
  'wallet',
  'files',
  'directories',
  'events',
  'todo_lists',
  'todos',
];

/** The person the agent works for. Passwords are per app (`notes`, `mail`, …). */
export interface Supervisor {
  readonly first_name: string;
  readonly last_name: string;
  readonly email: string;
  readonly phone: string;
  readonly passwords: Readonly<Record<string, string>>;
}

/** A whole world: who, when, and the data. `nextId` holds the next id of each table. */
export interface World {
  readonly supervisor: Supervisor;
  /** "Now" for the task: every timestamp an API writes is this. */
  readonly now: string;
  readonly tables: Tables;
  readonly nextId: Record<TableName, number>;
}

/** How much data a generated world holds (rows per table before a task template adds its own). */
export type WorldSize = 'tiny' | 'small' | 'full';

const SIZES: Record<
  WorldSize,
  Record<'contacts' | 'texts' | 'emails' | 'notes' | 'transactions' | 'requests' | 'files' | 'events' | 'todos', number>
> = {
  tiny: { contacts: 4, texts: 3, emails: 3, notes: 3, transactions: 5, requests: 2, files: 3, events: 3, todos: 3 },
  small: { contacts: 8, texts: 8, emails: 8, notes: 7, transactions: 14, requests: 4, files: 7, events: 6, todos: 7 },
  full: { contacts: 18, texts: 28, emails: 28, notes: 18, transactions: 40, requests: 8, files: 18, events: 14, todos: 18 },
};

/** Apps whose APIs need a login; the supervisor holds one password for each. */
export const LOGIN_APPS = ['phone', 'mail', 'notes', 'wallet', 'files', 'calendar', 'todo'] as const;

// ─── Dates ─────────────────────────────────────────────────────────────────────────────────────────

/** `YYYY-MM-DD` of a UTC millisecond time. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** `YYYY-MM-DDTHH:MM:SS` of a UTC millisecond time. */
export function isoDateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

/** Milliseconds of an ISO date or date-time (read as UTC). */
export function parseIso(text: string): number {
  return Date.parse(text.length === 10 ? `${text}T00:00:00Z` : `${text}Z`);
}

/** The date `days` days after the date part of `iso` (negative: before). */
export function addDays(iso: string, days: number): string {
  return isoDate(parseIso(iso.slice(0, 10)) + days * 86_400_000);
}

/** `YYYY-MM` of the calendar month before the one `iso` falls in. */
export function previousMonth(iso: string): string {
  const year = Number(iso.slice(0, 4));
  const month = Number(iso.slice(5, 7));
  return month === 1 ? `${year - 1}-12` : `${year}-${String(month - 1).padStart(2, '0')}`;
}

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** `May 2024` for `2024-05`. */
export function monthName(yearMonth: string): string {
  return `${MONTH_NAMES[Number(yearMonth.slice(5, 7)) - 1]} ${yearMonth.slice(0, 4)}`;
}

/** Round to cents (dollars with two decimals). */
export function cents(amount: number): number {
  return Math.round(amount * 100) / 100;
}

// ─── Generation ────────────────────────────────────────────────────────────────────────────────────

/** A deep copy (worlds are plain JSON data). */
export function cloneWorld(world: World): World {
  return structuredClone(world);
}

/** The next id of `table`, advancing the counter. */
export function allocateId(world: World, table: TableName): number {
  const id = world.nextId[table];
  world.nextId[table] = id + 1;
  return id;
}

/** Draws without replacement from a list (a copy is shuffled). */
export function sample<T>(rng: Rng, items: readonly T[], n: number): T[] {
  return rng.shuffle([...items]).slice(0, Math.min(n, items.length));
}

/** One uniformly random element. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** A time `daysBack` whole days (plus a random hour) before `now`. */
export function timeBefore(rng: Rng, now: string, maxDaysBack: number): string {
  const back = 1 + rng.int(Math.max(1, maxDaysBack));
  return `${addDays(now, -back)}T${String(8 + rng.int(12)).padStart(2, '0')}:${pick(rng, ['00', '15', '30', '45'])}:00`;
}

/** A random amount in [low, high] dollars, two decimals. */
export function randomAmount(rng: Rng, low: number, high: number): number {
  return cents(low + rng.next() * (high - low));
}

function password(rng: Rng): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  let out = '';
  for (let i = 0; i < 6; i++) out += alphabet[rng.int(alphabet.length)];
  return out;
}

/**
 * A fresh world from `seed`. Names, numbers and contents are drawn from fixed vocabularies; the family
 * relationships in UNIQUE_RELATIONSHIPS occur at most once, so "my sister" is unambiguous. The date is a
 * day of 2024 (so "last month" always exists in the generated history).
 */
export function generateWorld(seed: number, size: WorldSize): World {
  const rng = new Rng(seed);
  const counts = SIZES[size];
  const dayOfYear = 45 + rng.int(300);
  const now = `${isoDate(Date.UTC(2024, 0, 1) + dayOfYear * 86_400_000)}T${String(9 + rng.int(8)).padStart(2, '0')}:00:00`;
  const names = sample(rng, FIRST_NAMES, counts.contacts + 1);
  const lastNames = sample(rng, LAST_NAMES, counts.contacts + 1);
  const supervisorFirst = names[0];
  const supervisorLast = lastNames[0];
  const phones = sample(
    rng,
    Array.from({ length: 900 }, (_, i) => `555-${String(1000 + i * 9 + 7).slice(-4)}`),
    counts.contacts + 1,
  );
  const supervisor: Supervisor = {
    first_name: supervisorFirst,
    last_name: supervisorLast,
    email: `${supervisorFirst}.${supervisorLast}@mail.com`.toLowerCase(),
    phone: phones[0],
    passwords: Object.fromEntries(LOGIN_APPS.map((app) => [app, password(rng)])),
  };
  const tables: Tables = {
    contacts: [],
    texts: [],
    emails: [],
    notes: [],
    transactions: [],
    money_requests: [],
    wallet: [],
    files: [],
    directories: [],
    events: [],
    todo_lists: [],
    todos: [],
  };
  const world: World = {
    supervisor,
    now,
    tables,
    nextId: Object.fromEntries(
      [
        'contacts',
        'texts',
        'emails',
        'notes',
        'transactions',
        'money_requests',
        'wallet',
        'files',
        'directories',
        'events',
        'todo_lists',
        'todos',
      ].map((t) => [t, 1]),
    ) as Record<TableName, number>,
  };

  const uniqueLeft = rng.shuffle([...UNIQUE_RELATIONSHIPS]);
  const shared = RELATIONSHIPS.filter((r) => !UNIQUE_RELATIONSHIPS.includes(r));
  for (let i = 1; i <= counts.contacts; i++) {
    const relationship = uniqueLeft.length > 0 && rng.next() < 0.6 ? (uniqueLeft.pop() as string) : pick(rng, shared);
    tables.contacts.push({
      id: allocateId(world, 'contacts'),
      first_name: names[i],
      last_name: lastNames[i],
      email: `${names[i]}.${lastNames[i]}@mail.com`.toLowerCase(),
      phone: phones[i],
      relationship,
    });
  }
  const people = tables.contacts;
  for (let i = 0; i < counts.texts; i++) {
    tables.texts.push({
      id: allocateId(world, 'texts'),
      phone_number: pick(rng, people).phone,
      direction: rng.next() < 0.6 ? 'in' : 'out',
      message: pick(rng, TEXT_MESSAGES),
      sent_at: timeBefore(rng, now, 40),
    });
  }
  for (let i = 0; i < counts.emails; i++) {
    const other = pick(rng, people).email;
    const incoming = rng.next() < 0.75;
    tables.emails.push({
      id: allocateId(world, 'emails'),
      folder: incoming ? 'inbox' : 'sent',
      from: incoming ? other : supervisor.email,
      to: incoming ? supervisor.email : other,
      subject: pick(rng, EMAIL_SUBJECTS),
      body: `${pick(rng, TEXT_MESSAGES)} ${pick(rng, TEXT_MESSAGES)}`,
      sent_at: timeBefore(rng, now, 40),
      read: incoming ? rng.next() < 0.6 : true,
    });
  }
  const titles = sample(rng, NOTE_TITLES, counts.notes);
  for (const title of titles) {
    const created = timeBefore(rng, now, 120);
    tables.notes.push({
      id: allocateId(world, 'notes'),
      title,
      content: sample(rng, NOTE_WORDS, 3 + rng.int(3)).join(' '),
      tags: sample(rng, TAGS, rng.int(3)),
      created_at: created,
      updated_at: created,
    });
  }
  for (let i = 0; i < counts.transactions; i++) {
    const sent = rng.next() < 0.8;
    tables.transactions.push({
      id: allocateId(world, 'transactions'),
      direction: sent ? 'sent' : 'received',
      email: pick(rng, people).email,
      amount: randomAmount(rng, 3, 120),
      category: sent ? pick(rng, CATEGORIES) : 'transfer',
      note: '',
      created_at: timeBefore(rng, now, 70),
    });
  }
  for (let i = 0; i < counts.requests; i++) {
    tables.money_requests.push({
      id: allocateId(world, 'money_requests'),
      direction: rng.next() < 0.7 ? 'incoming' : 'outgoing',
      email: pick(rng, people).email,
      amount: randomAmount(rng, 5, 80),
      note: pick(rng, EVENT_TITLES).toLowerCase(),
      status: rng.next() < 0.7 ? 'pending' : pick(rng, ['approved', 'declined'] as const),
      created_at: timeBefore(rng, now, 20),
    });
  }
  tables.wallet.push({ id: allocateId(world, 'wallet'), balance: randomAmount(rng, 300, 2500) });
  const dirs = sample(rng, DIRECTORIES, 2 + rng.int(2));
  for (const dir of dirs) tables.directories.push({ id: allocateId(world, 'directories'), path: `/${dir}` });
  const stems = sample(rng, FILE_STEMS, counts.files);
  for (const stem of stems) {
    const dir = pick(rng, dirs);
    const created = timeBefore(rng, now, 90);
    tables.files.push({
      id: allocateId(world, 'files'),
      path: `/${dir}/${stem}.${pick(rng, ['txt', 'txt', 'md', 'csv'])}`,
      content: sample(rng, NOTE_WORDS, 3).join(' '),
      created_at: created,
      updated_at: created,
    });
  }
  for (let i = 0; i < counts.events; i++) {
    const day = addDays(now, rng.int(21) - 7);
    const hour = 8 + rng.int(9);
    tables.events.push({
      id: allocateId(world, 'events'),
      title: pick(rng, EVENT_TITLES),
      start: `${day}T${String(hour).padStart(2, '0')}:00:00`,
      end: `${day}T${String(hour + 1).padStart(2, '0')}:00:00`,
      location: pick(rng, LOCATIONS),
      attendees: sample(rng, people, rng.int(3)).map((p) => p.email),
    });
  }
  const lists = sample(rng, TODO_LISTS, 2 + rng.int(2));
  for (const name of lists) tables.todo_lists.push({ id: allocateId(world, 'todo_lists'), name });
  const todoTitles = sample(rng, TODO_TITLES, counts.todos);
  for (const title of todoTitles) {
    tables.todos.push({
      id: allocateId(world, 'todos'),
      title,
      list: pick(rng, lists),
      due_date: rng.next() < 0.6 ? addDays(now, rng.int(20) - 5) : null,
      done: rng.next() < 0.3,
      created_at: timeBefore(rng, now, 30),
    });
  }
  return world;
}

/** Full name of a contact. */
export function fullName(contact: Pick<Contact, 'first_name' | 'last_name'>): string {
  return `${contact.first_name} ${contact.last_name}`;
}
