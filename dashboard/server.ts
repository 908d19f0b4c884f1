/**
 * The dashboard: a Fastify server over one Redis and key prefix. It serves
 *   /                          training jobs
 *   /jobs/:id                  status, config, progress and live metric curves (uPlot)
 *   /jobs/:id/trajectories     the recorded rollouts of an iteration, token by token
 *   /queues                    bull-board for the `jobs` and `rollouts` queues (read-only by default)
 *   /api/...                   the JSON the pages draw from
 * Every value read from Redis reaches the browser as JSON and is put on the page with textContent; the
 * server-rendered page shells escape what they contain. Nothing is cached across requests: each request
 * reads what it needs through JobControl, so memory does not grow with time or with the number of jobs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import YAML from 'yaml';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { HorizonError, ServiceError } from '../core/errors.js';
import { connectRedis, redactUrl } from '../rollout/connection.js';
import { JobControl, JobNotFoundError, type JobStatus } from '../rollout/jobs.js';
import { DEFAULT_PREFIX, QUEUES } from '../rollout/protocol.js';
import { queueConnection } from '../rollout/queue-connection.js';
import { renderPage, type PageName } from './pages.js';
import { segmentPieces } from './trajectory.js';

const require = createRequire(import.meta.url);
const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');

/** Default port of `horizon dashboard`. */
export const DEFAULT_DASHBOARD_PORT = 8265;

/** Metric keys the job page draws or summarizes; the metrics endpoint sends only these. */
export const DASHBOARD_METRIC_KEYS = [
  'step',
  'charts/reward_mean',
  'charts/success_rate',
  'losses/loss',
  'losses/policy_loss',
  'losses/clipfrac',
  'losses/approx_kl',
  'losses/grad_norm',
  'losses/logprob_mismatch',
  'rollout/staleness',
  'rollout/episodes',
  'rollout/episodes_per_s',
  'rollout/tokens_per_s',
  'rollout/failed_groups',
  'rollout/retries',
  'rollout/cancelled',
  'rollout/duplicates',
  'rollout/filtered',
  'time/collect_s',
  'time/update_s',
  'time/elapsed_s',
  'sft/step',
  'sft/nll',
] as const;

/** How the dashboard is started. */
export interface DashboardOptions {
  readonly redisUrl: string;
  readonly prefix?: string;
  /** 0 picks a free port. Default {@link DEFAULT_DASHBOARD_PORT}. */
  readonly port?: number;
  /** Default 127.0.0.1. Anything that is not a loopback address needs `token`. */
  readonly host?: string;
  /** When set, every request needs `Authorization: Bearer <token>`, `?token=<token>` or the cookie that sets. */
  readonly token?: string;
  /** Let bull-board retry, remove, pause and clean jobs. Off by default (bull-board's readOnlyMode). */
  readonly allowActions?: boolean;
}

/** A running dashboard. */
export interface DashboardHandle {
  /** Base URL, ending in `/`. */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

const TOKEN_COOKIE = 'horizon_dashboard_token';

/** Whether `host` is a loopback address or name (binding there is only reachable from this machine). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Refuse an unsafe bind before anything starts. */
export function checkBindSafety(host: string, token: string | undefined): void {
  if (!isLoopbackHost(host) && !token) {
    throw new HorizonError(
      'E_DASHBOARD_UNSAFE',
      `refusing to serve the dashboard on ${host} without a token: anyone who can reach that address could read every job. Pass --token <secret> (then requests need "Authorization: Bearer <secret>" or ?token=<secret>), or bind 127.0.0.1 and use an SSH tunnel`,
    );
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** An API failure with the HTTP status to answer with. */
class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Start the dashboard server; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<DashboardHandle> {
  const host = options.host ?? '127.0.0.1';
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const readOnly = !options.allowActions;
  checkBindSafety(host, options.token);

  const redis: Redis = await connectRedis(options.redisUrl);
  const jobs = new JobControl(redis, options.redisUrl, { prefix });
  const queues = [QUEUES.jobs, QUEUES.rollouts].map((name) => new Queue(name, { connection: queueConnection(options.redisUrl), prefix }));
  const app = Fastify({ logger: false });

  const expected = options.token ? digest(options.token) : undefined;
  app.addHook('onRequest', async (request, reply) => {
    if (!expected) {
      // Loopback without a token: refuse other Host names, so a web page cannot reach this server through
      // a domain that it re-points at 127.0.0.1 (DNS rebinding).
      const hostname = (request.headers.host ?? '').replace(/:\d+$/, '');
      if (!isLoopbackHost(hostname)) return reply.code(403).type('text/plain').send('forbidden: use http://127.0.0.1 or http://localhost');
      return;
    }
    const auth = request.headers.authorization;
    const query = (request.query as Record<string, unknown> | undefined)?.token;
    const presented =
      (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined) ??
      (typeof query === 'string' ? query : undefined) ??
      cookieValue(request.headers.cookie, TOKEN_COOKIE);
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer')
        .type('text/plain')
        .send('unauthorized: send "Authorization: Bearer <token>" or open the page with ?token=<token>');
    }
    // A browser that came with ?token= keeps it in a cookie, so the pages' own requests (and bull-board's) pass.
    if (typeof query === 'string')
      reply.header('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/`);
  });

  // ---- bull-board ----
  const board = new FastifyAdapter();
  board.setBasePath('/queues');
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: `horizon queues (${prefix})` } },
  });
  await app.register(board.registerPlugin(), { prefix: '/queues' });

  // ---- static assets (read once; a fixed set of small files) ----
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  const assets: Record<string, { body: string; type: string }> = {
    'uplot.js': { body: readFileSync(path.join(uplotDir, 'uPlot.iife.min.js'), 'utf8'), type: 'application/javascript; charset=utf-8' },
    'uplot.css': { body: readFileSync(path.join(uplotDir, 'uPlot.min.css'), 'utf8'), type: 'text/css; charset=utf-8' },
    'app.js': { body: readFileSync(path.join(ASSETS, 'app.js'), 'utf8'), type: 'application/javascript; charset=utf-8' },
    'app.css': { body: readFileSync(path.join(ASSETS, 'app.css'), 'utf8'), type: 'text/css; charset=utf-8' },
  };
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const asset = Object.hasOwn(assets, request.params.file) ? assets[request.params.file] : undefined;
    if (!asset) return reply.code(404).type('text/plain').send('no such asset');
    return reply.type(asset.type).header('Cache-Control', 'max-age=300').header('X-Content-Type-Options', 'nosniff').send(asset.body);
  });

  // ---- pages ----
  const sendPage = (reply: FastifyReply, page: PageName, params: { jobId?: string; error?: string; status?: number }) =>
    reply
      .code(params.status ?? 200)
      .type('text/html; charset=utf-8')
      .header(
        'Content-Security-Policy',
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
      )
      .header('X-Content-Type-Options', 'nosniff')
      .send(renderPage(page, { ...params, prefix, readOnly }));
  const jobPage = (page: PageName) => async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    try {
      await jobs.status(request.params.id);
      return sendPage(reply, page, { jobId: request.params.id });
    } catch (err) {
      if (err instanceof JobNotFoundError) return sendPage(reply, page, { jobId: request.params.id, error: err.message, status: 404 });
      return sendPage(reply, page, { jobId: request.params.id, error: `could not read the job: ${(err as Error).message}`, status: 502 });
    }
  };
  app.get('/', async (_request, reply) => sendPage(reply, 'jobs', {}));
  app.get('/jobs/:id', jobPage('job'));
  app.get('/jobs/:id/trajectories', jobPage('trajectories'));

  // ---- JSON API ----
  const status = async (id: string): Promise<JobStatus> => {
    try {
      return await jobs.status(id);
    } catch (err) {
      if (err instanceof JobNotFoundError) throw new ApiError(404, err.message);
      throw err;
    }
  };
  app.get('/api/jobs', async () => ({ prefix, readOnly, jobs: await jobs.list(200) }));
  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (request) => {
    const job = await status(request.params.id);
    let configText: string;
    try {
      configText = YAML.stringify(await jobs.config(request.params.id));
    } catch (err) {
      configText = `(the stored config could not be read: ${(err as Error).message})`;
    }
    return { status: job, configText };
  });
  app.get<{ Params: { id: string }; Querystring: { from?: string } }>('/api/jobs/:id/metrics', async (request) => {
    await status(request.params.id);
    const from = request.query.from === undefined ? 0 : Number(request.query.from);
    if (!Number.isInteger(from) || from < 0) throw new ApiError(400, `?from= expects a whole number ≥ 0, got "${request.query.from}"`);
    let records: Record<string, unknown>[];
    try {
      records = await jobs.metrics(request.params.id, from);
    } catch (err) {
      throw new ApiError(502, `a metrics record of this job is not valid JSON (${(err as Error).message})`);
    }
    return { from, next: from + records.length, ...metricColumns(records) };
  });
  app.get<{ Params: { id: string } }>('/api/jobs/:id/samples', async (request) => {
    await status(request.params.id);
    return { steps: await readSamples(() => jobs.sampleIndex(request.params.id)) };
  });
  app.get<{ Params: { id: string; step: string; group: string } }>('/api/jobs/:id/samples/:step/:group', async (request) => {
    await status(request.params.id);
    const step = Number(request.params.step);
    const groupIndex = Number(request.params.group);
    // The newest record of a step wins (a resumed job records the iterations it redoes again).
    const sample = await readSamples(() => jobs.sampleAt(request.params.id, step));
    if (!sample) {
      const recorded = (await readSamples(() => jobs.sampleIndex(request.params.id))).map((s) => s.step);
      throw new ApiError(404, `no trajectories recorded for iteration ${request.params.step} (recorded: ${recorded.join(', ') || 'none'})`);
    }
    const group = sample.groups.find((g) => g.groupIndex === groupIndex);
    if (!group)
      throw new ApiError(
        404,
        `iteration ${step} has no recorded group ${request.params.group} (recorded: ${sample.groups.map((g) => g.groupIndex).join(', ')})`,
      );
    return {
      step,
      groupIndex,
      task: group.task,
      rollouts: group.rollouts.map((r, index) => ({
        index,
        rolloutId: r.trajectory.rolloutId,
        policyVersion: r.trajectory.policyVersion,
        reward: r.trajectory.reward,
        advantage: r.advantage,
        trained: r.trained,
        finishReason: r.trajectory.finishReason,
        turns: r.trajectory.turns,
        retries: r.trajectory.retries,
        wallMs: r.trajectory.wallMs,
        segments: r.trajectory.segments.map(segmentPieces),
      })),
    };
  });
  app.get('/api/*', async () => {
    throw new ApiError(404, 'no such API route');
  });

  app.setErrorHandler((err, request, reply) => {
    const code =
      err instanceof ApiError
        ? err.statusCode
        : typeof (err as { statusCode?: unknown }).statusCode === 'number'
          ? (err as { statusCode: number }).statusCode
          : 500;
    const message = err instanceof Error ? err.message : String(err);
    if (request.url.startsWith('/api/')) return reply.code(code).send({ error: message });
    return reply.code(code).type('text/plain').send(`error: ${message}`);
  });

  try {
    await app.listen({ host, port: options.port ?? DEFAULT_DASHBOARD_PORT });
  } catch (err) {
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
    await app.close().catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ServiceError(`port ${options.port} on ${host} is in use: pass another --port (0 picks a free one)`, { cause: err });
    }
    throw new ServiceError(
      `the dashboard could not listen on ${host}:${options.port} (${(err as Error).message}); Redis ${redactUrl(options.redisUrl)}`,
      { cause: err },
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? DEFAULT_DASHBOARD_PORT);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    app,
    close: async () => {
      await app.close();
      await Promise.all(queues.map((q) => q.close()));
      await jobs.close();
      redis.disconnect();
    },
  };
}

/**
 * Metrics records as columns: `keys` (those of {@link DASHBOARD_METRIC_KEYS} that occur) and one array per
 * key, null where a record lacks the key or holds something that is not a finite number.
 */
export function metricColumns(records: readonly Record<string, unknown>[]): { keys: string[]; columns: (number | null)[][] } {
  const keys = DASHBOARD_METRIC_KEYS.filter((k) => records.some((r) => typeof r[k] === 'number'));
  const columns = keys.map((k) => records.map((r) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : null)));
  return { keys, columns };
}

async function readSamples<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new ApiError(502, `a recorded trajectory sample of this job is not valid JSON (${(err as Error).message})`);
  }
}
