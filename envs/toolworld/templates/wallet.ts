/** Task templates of the wallet app (some with the phone app for people). */
import type { SolverContext } from '../solver.js';
import { CATEGORIES, EVENT_TITLES } from '../vocab.js';
import { addDays, allocateId, cents, pick, randomAmount, type World } from '../world.js';
import { findContact, findRelative } from './phone.js';
import { invoke, lastMonth, nameOf, plantPayment, q, recent, relativeContact, type TaskTemplate } from './template.js';

interface TransactionItem {
  id: number;
  direction: string;
  email: string;
  amount: number;
  category: string;
  created_at: string;
}

interface RequestItem {
  id: number;
  direction: string;
  email: string;
  amount: number;
  status: string;
}

/** A day inside last month. */
function dayLastMonth(world: World, rng: import('../../../core/rng.js').Rng): string {
  const { start, end } = lastMonth(world);
  const days = Number(end.slice(8, 10));
  return `${addDays(start, rng.int(days))}T${String(9 + rng.int(10)).padStart(2, '0')}:00:00`;
}

/** Sum of what was spent in `category` last month, to the cent. */
export function spentLastMonth(world: World, category: string): number {
  const { start, end } = lastMonth(world);
  return cents(
    world.tables.transactions
      .filter(
        (t) => t.direction === 'sent' && t.category === category && t.created_at.slice(0, 10) >= start && t.created_at.slice(0, 10) <= end,
      )
      .reduce((sum, t) => sum + t.amount, 0),
  );
}

/** Plant one or two payments in `category` last month so the total is never zero. */
export function plantCategorySpending(world: World, rng: import('../../../core/rng.js').Rng, category: string): void {
  for (let i = 0, n = 1 + rng.int(2); i < n; i++)
    plantPayment(world, pick(rng, world.tables.contacts).email, randomAmount(rng, 5, 90), category, dayLastMonth(world, rng));
}

/** The solver's sum over last month's payments in a category. */
export function* sumLastMonth(s: SolverContext, world: World, category: string) {
  const { start, end } = lastMonth(world);
  const all = yield* s.listAll<TransactionItem>('wallet', 'list_transactions', {
    direction: 'sent',
    category,
    start_date: start,
    end_date: end,
  });
  return cents(all.reduce((sum, t) => sum + t.amount, 0));
}

export const walletTemplates: TaskTemplate[] = [
  {
    name: 'wallet_balance',
    apps: ['wallet'],
    level: 1,
    group: 'normal',
    example: 'What is my wallet balance?',
    make(world) {
      const balance = world.tables.wallet[0].balance;
      return {
        instruction: 'What is my wallet balance?',
        answer: balance,
        apis: ['wallet.show_balance'],
        *solve(s) {
          const shown = yield* s.get<{ balance: number }>('wallet', 'show_balance');
          yield* s.finish([], shown.balance);
        },
      };
    },
  },
  {
    name: 'wallet_pay',
    apps: ['phone', 'wallet'],
    level: 2,
    group: 'normal',
    example: 'Send $25.50 to Ana Diaz for "Lunch".',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      const amount = randomAmount(rng, 5, 60);
      const note = pick(rng, EVENT_TITLES);
      return {
        instruction: `Send $${amount.toFixed(2)} to ${nameOf(contact)} for ${q(note)}.`,
        apply: (w) => invoke(w, 'wallet.send_money', { to_email: contact.email, amount, note }),
        apis: ['phone.search_contacts', 'wallet.send_money'],
        *solve(s) {
          const found = yield* findContact(s, contact);
          yield* s.finish([s.api('wallet', 'send_money', { to_email: found.email, amount: s.copy(amount), note })]);
        },
      };
    },
  },
  {
    name: 'wallet_spent_category',
    apps: ['wallet'],
    level: 2,
    group: 'normal',
    example: 'How much did I spend on groceries in April 2024?',
    make(world, rng) {
      const category = pick(rng, CATEGORIES);
      plantCategorySpending(world, rng, category);
      const total = spentLastMonth(world, category);
      return {
        instruction: `How much did I spend on ${category} in ${lastMonth(world).name}?`,
        answer: total,
        apis: ['wallet.list_transactions'],
        *solve(s) {
          yield* s.finish([], yield* sumLastMonth(s, world, category));
        },
      };
    },
  },
  {
    name: 'wallet_approve_request',
    apps: ['wallet'],
    level: 2,
    group: 'normal',
    example: 'Approve the money request from ana.diaz@mail.com.',
    make(world, rng) {
      const pending = new Set(
        world.tables.money_requests.filter((r) => r.direction === 'incoming' && r.status === 'pending').map((r) => r.email),
      );
      const candidates = world.tables.contacts.filter((c) => !pending.has(c.email));
      if (candidates.length === 0) return undefined;
      const contact = pick(rng, candidates);
      const id = allocateId(world, 'money_requests');
      world.tables.money_requests.push({
        id,
        direction: 'incoming',
        email: contact.email,
        amount: randomAmount(rng, 5, 60),
        note: pick(rng, EVENT_TITLES).toLowerCase(),
        status: 'pending',
        created_at: recent(rng, world, 5),
      });
      return {
        instruction: `Approve the money request from ${contact.email}.`,
        apply: (w) => invoke(w, 'wallet.approve_money_request', { request_id: id }),
        apis: ['wallet.list_money_requests', 'wallet.approve_money_request'],
        *solve(s) {
          const all = yield* s.listAll<RequestItem>(
            'wallet',
            'list_money_requests',
            { direction: 'incoming', status: 'pending' },
            (r) => r.email === contact.email,
          );
          const request = s.choose(all, (r) => r.email === contact.email);
          yield* s.finish([s.api('wallet', 'approve_money_request', { request_id: request.id })]);
        },
      };
    },
  },
  {
    name: 'wallet_decline_above',
    apps: ['wallet'],
    level: 2,
    group: 'normal',
    example: 'Decline every pending money request I received for more than $40.',
    make(world, rng) {
      const limit = 20 + 5 * rng.int(6);
      const id = allocateId(world, 'money_requests');
      world.tables.money_requests.push({
        id,
        direction: 'incoming',
        email: pick(rng, world.tables.contacts).email,
        amount: randomAmount(rng, limit + 1, limit + 60),
        note: pick(rng, EVENT_TITLES).toLowerCase(),
        status: 'pending',
        created_at: recent(rng, world, 5),
      });
      const doomed = world.tables.money_requests
        .filter((r) => r.direction === 'incoming' && r.status === 'pending' && r.amount > limit)
        .map((r) => r.id);
      return {
        instruction: `Decline every pending money request I received for more than $${limit}.`,
        apply: (w) => doomed.forEach((request_id) => invoke(w, 'wallet.decline_money_request', { request_id })),
        apis: ['wallet.list_money_requests', 'wallet.decline_money_request'],
        *solve(s) {
          const all = yield* s.listAll<RequestItem>('wallet', 'list_money_requests', { direction: 'incoming', status: 'pending' });
          const chosen = s.chooseAll(all, (r) => r.amount > limit);
          yield* s.finish(chosen.map((r) => s.api('wallet', 'decline_money_request', { request_id: r.id })));
        },
      };
    },
  },
  {
    name: 'wallet_request_relative',
    apps: ['phone', 'wallet'],
    level: 2,
    group: 'normal',
    example: 'Ask my roommate for $30.00 for "rent".',
    make(world, rng) {
      const relative = relativeContact(world, rng);
      const amount = randomAmount(rng, 10, 80);
      const note = pick(rng, CATEGORIES);
      return {
        instruction: `Ask my ${relative.relationship} for $${amount.toFixed(2)} for ${q(note)}.`,
        apply: (w) => invoke(w, 'wallet.request_money', { from_email: relative.email, amount, note }),
        apis: ['phone.list_contacts', 'wallet.request_money'],
        *solve(s) {
          const found = yield* findRelative(s, relative.relationship);
          yield* s.finish([s.api('wallet', 'request_money', { from_email: found.email, amount: s.copy(amount), note })]);
        },
      };
    },
  },
  {
    name: 'wallet_largest_payment',
    apps: ['wallet'],
    level: 2,
    group: 'normal',
    example: 'Who got my largest payment in April 2024? Answer with their email.',
    make(world, rng) {
      const contact = pick(rng, world.tables.contacts);
      plantPayment(world, contact.email, randomAmount(rng, 200, 280), pick(rng, CATEGORIES), dayLastMonth(world, rng));
      const { start, end, name } = lastMonth(world);
      return {
        instruction: `Who got my largest payment in ${name}? Answer with their email.`,
        answer: contact.email,
        apis: ['wallet.list_transactions'],
        *solve(s) {
          const all = yield* s.listAll<TransactionItem>('wallet', 'list_transactions', {
            direction: 'sent',
            start_date: start,
            end_date: end,
          });
          const largest = all.reduce((best, t) => (t.amount > best.amount ? t : best), all[0]);
          yield* s.finish([], largest.email);
        },
      };
    },
  },
  {
    name: 'wallet_count_received',
    apps: ['wallet'],
    level: 2,
    group: 'normal',
    example: 'How many payments did I receive since 2024-04-18?',
    make(world, rng) {
      const start = addDays(world.now, -30);
      const id = allocateId(world, 'transactions');
      world.tables.transactions.push({
        id,
        direction: 'received',
        email: pick(rng, world.tables.contacts).email,
        amount: randomAmount(rng, 5, 60),
        category: 'transfer',
        note: '',
        created_at: recent(rng, world, 20),
      });
      const count = world.tables.transactions.filter((t) => t.direction === 'received' && t.created_at.slice(0, 10) >= start).length;
      return {
        instruction: `How many payments did I receive since ${start}?`,
        answer: count,
        apis: ['wallet.list_transactions'],
        *solve(s) {
          const all = yield* s.listAll<TransactionItem>('wallet', 'list_transactions', { direction: 'received', start_date: start });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'wallet_text_total',
    apps: ['wallet', 'phone'],
    level: 3,
    group: 'normal',
    example: 'Text my sister the total I spent on groceries last month, just the amount like 12.50.',
    make(world, rng) {
      const relative = relativeContact(world, rng);
      const category = pick(rng, CATEGORIES);
      plantCategorySpending(world, rng, category);
      const message = spentLastMonth(world, category).toFixed(2);
      return {
        instruction: `Text my ${relative.relationship} the total I spent on ${category} last month, just the amount like 12.50.`,
        apply: (w) => invoke(w, 'phone.send_text', { phone_number: relative.phone, message }),
        apis: ['wallet.list_transactions', 'phone.list_contacts', 'phone.send_text'],
        *solve(s) {
          const total = yield* sumLastMonth(s, world, category);
          const to = yield* findRelative(s, relative.relationship);
          yield* s.finish([s.api('phone', 'send_text', { phone_number: to.phone, message: s.copy(total.toFixed(2)) })]);
        },
      };
    },
  },
];
