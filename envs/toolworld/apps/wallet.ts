/** `wallet`: balance, payments and money requests. Amounts are dollars with at most two decimals. */
import { z } from 'zod';
import { ApiError, api, defineApp, fields, findById, paginate } from '../api.js';
import { CATEGORIES } from '../vocab.js';
import { allocateId, cents, type World } from '../world.js';
import { dateRange, inDateRange, loginApi, newestFirst } from './common.js';

const category = z.enum(['transfer', ...CATEGORIES] as [string, ...string[]]);

/** The wallet account row (the world always has exactly one). */
function account(world: World) {
  return world.tables.wallet[0];
}

/** Pay `amount` to `email`: a sent transaction and a lower balance; 402 when the balance is short. */
function pay(world: World, email: string, amount: number, note: string, categoryName: string): number {
  if (email.toLowerCase() === world.supervisor.email) throw new ApiError(422, 'You cannot send money to yourself.');
  const wallet = account(world);
  if (amount > wallet.balance + 1e-9) throw new ApiError(402, `Insufficient balance: you have $${wallet.balance.toFixed(2)}.`);
  wallet.balance = cents(wallet.balance - amount);
  const id = allocateId(world, 'transactions');
  world.tables.transactions.push({ id, direction: 'sent', email, amount, category: categoryName, note, created_at: world.now });
  return id;
}

function incomingPending(world: World, id: number) {
  const request = findById(world.tables.money_requests, id, 'Money request', 'request_id');
  if (request.direction !== 'incoming')
    throw new ApiError(422, `Request ${id} is one you sent; only requests you received can be answered.`);
  if (request.status !== 'pending') throw new ApiError(409, `Request ${id} is already ${request.status}.`);
  return request;
}

/** The wallet app. */
export const walletApp = defineApp({ name: 'wallet', description: 'Your money: balance, payments, requests.', login: true }, [
  loginApi('wallet'),
  api({
    name: 'show_balance',
    description: 'Show your balance.',
    returns: '{balance}',
    args: {},
    run(ctx) {
      return { balance: account(ctx.world).balance };
    },
  }),
  api({
    name: 'list_transactions',
    description: 'List payments, newest first; filter by direction, category and date.',
    returns: '{items: [{id, direction, email, amount, category, created_at}], page, next_page}',
    args: {
      direction: z.enum(['sent', 'received']).optional().describe('sent = money you paid, received = money you got.'),
      category: category.optional().describe('Only this spending category.'),
      ...dateRange,
    },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.transactions.filter(
        (t) =>
          (args.direction === undefined || t.direction === args.direction) &&
          (args.category === undefined || t.category === args.category) &&
          inDateRange(t.created_at, args.start_date, args.end_date),
      );
      return paginate(
        newestFirst(rows, (t) => t.created_at).map(({ note: _note, ...rest }) => rest),
        args,
      );
    },
  }),
  api({
    name: 'show_transaction',
    description: 'Show one payment with its note.',
    returns: '{id, direction, email, amount, category, note, created_at}',
    args: { transaction_id: fields.id.describe('Id of the payment.') },
    run(ctx, args) {
      return findById(ctx.world.tables.transactions, args.transaction_id, 'Transaction', 'transaction_id');
    },
  }),
  api({
    name: 'send_money',
    description: 'Pay someone by email.',
    returns: '{transaction_id}',
    args: {
      to_email: fields.email.describe('Email of the person to pay.'),
      amount: fields.amount.describe('Dollars, at most two decimals.'),
      note: z.string().max(200).default('').describe('A note for the payment.'),
      category: category.default('transfer').describe('Spending category.'),
    },
    mutates: true,
    run(ctx, args) {
      return { transaction_id: pay(ctx.world, args.to_email, args.amount, args.note, args.category) };
    },
  }),
  api({
    name: 'request_money',
    description: 'Ask someone to pay you.',
    returns: '{request_id}',
    args: {
      from_email: fields.email.describe('Email of the person who should pay.'),
      amount: fields.amount.describe('Dollars, at most two decimals.'),
      note: z.string().max(200).default('').describe('What it is for.'),
    },
    mutates: true,
    run(ctx, args) {
      if (args.from_email.toLowerCase() === ctx.world.supervisor.email) throw new ApiError(422, 'You cannot request money from yourself.');
      const id = allocateId(ctx.world, 'money_requests');
      ctx.world.tables.money_requests.push({
        id,
        direction: 'outgoing',
        email: args.from_email,
        amount: args.amount,
        note: args.note,
        status: 'pending',
        created_at: ctx.world.now,
      });
      return { request_id: id };
    },
  }),
  api({
    name: 'list_money_requests',
    description: 'List money requests, newest first; incoming ones ask you to pay.',
    returns: '{items: [{id, direction, email, amount, note, status, created_at}], page, next_page}',
    args: {
      direction: z.enum(['incoming', 'outgoing']).optional().describe('incoming = others ask you, outgoing = you asked.'),
      status: z.enum(['pending', 'approved', 'declined']).optional().describe('Only requests with this status.'),
    },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.money_requests.filter(
        (r) => (args.direction === undefined || r.direction === args.direction) && (args.status === undefined || r.status === args.status),
      );
      return paginate(
        newestFirst(rows, (r) => r.created_at),
        args,
      );
    },
  }),
  api({
    name: 'approve_money_request',
    description: 'Pay a pending request you received.',
    returns: '{transaction_id}',
    args: { request_id: fields.id.describe('Id of the request.') },
    mutates: true,
    run(ctx, args) {
      const request = incomingPending(ctx.world, args.request_id);
      const transactionId = pay(ctx.world, request.email, request.amount, request.note, 'transfer');
      request.status = 'approved';
      return { transaction_id: transactionId };
    },
  }),
  api({
    name: 'decline_money_request',
    description: 'Decline a pending request you received.',
    returns: '{message}',
    args: { request_id: fields.id.describe('Id of the request.') },
    mutates: true,
    run(ctx, args) {
      const request = incomingPending(ctx.world, args.request_id);
      request.status = 'declined';
      return { message: `Request ${request.id} declined.` };
    },
  }),
]);
