/**
 * Redis connection settings from a URL, shared by the learner, the rollout workers and the CLI.
 * `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, ServiceError } from '../core/errors.js';

const DEFAULT_PORT = 6379;

/**
 * Connection settings parsed from a URL. A plain subset of ioredis's RedisOptions that BullMQ's
 * `connection` option also accepts (ioredis's own type does not fit BullMQ's declared one).
 */
export interface RedisUrlOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** Present for rediss:// URLs. */
  tls?: { servername?: string };
  /** Always null: BullMQ workers require commands that wait through reconnects. */
  maxRetriesPerRequest: null;
}

/**
 * ioredis/BullMQ connection options for a `redis://` / `rediss://` URL. `maxRetriesPerRequest: null` is set because BullMQ
 * workers block on Redis and refuse connections that give up on a command after N reconnects.
 * Throws ConfigError for anything that is not a well-formed Redis URL.
 */
export function redisOptionsFromUrl(url: string): RedisUrlOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `invalid Redis URL ${JSON.stringify(redactUrl(url))}: expected redis://[user:password@]host[:port][/db] or rediss://… for TLS`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`unsupported Redis URL scheme "${parsed.protocol}" in ${redactUrl(url)}: use redis:// or rediss:// (TLS)`);
  }
  // URL keeps IPv6 hosts bracketed ("[::1]"); sockets want the bare address.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new ConfigError(`Redis URL ${redactUrl(url)} has no host`);

  const port = parsed.port === '' ? DEFAULT_PORT : Number(parsed.port);
  const path = parsed.pathname.replace(/^\//, '');
  let db = 0;
  if (path !== '') {
    if (!/^\d+$/.test(path)) {
      throw new ConfigError(`Redis URL ${redactUrl(url)} has path "/${path}"; the path must be a database number such as /0`);
    }
    db = Number(path);
  }

  const options: RedisUrlOptions = { host, port, db, maxRetriesPerRequest: null };
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') options.tls = { servername: isIpAddress(host) ? undefined : host };
  return options;
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** The URL with its password replaced by `***`, safe to print or log. Non-URLs are redacted best-effort. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString().replace(/%2A%2A%2A@/, '***@');
  } catch {
    return url.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@');
  }
}

/** The Redis URL to use: an explicit `--redis` flag wins over the REDIS_URL environment variable. */
export function resolveRedisUrl(flag?: string): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = process.env.REDIS_URL;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

/** Options for {@link connectRedis}: any ioredis option (overriding the URL's), plus the first-connect timeout. */
export interface ConnectRedisOptions extends RedisOptions {
  /** Give up on the first connection after this long (default 5 s). */
  connectTimeoutMs?: number;
}

/**
 * Connect and wait until the server is ready. The first connection attempt is not retried: an unreachable
 * server or a rejected password fails at once with a ServiceError naming the (redacted) URL and the reason.
 * Once connected, the client reconnects with ioredis's usual backoff (or `options.retryStrategy`).
 * Later connection errors surface as rejected commands; the client keeps reconnecting with ioredis' strategy.
 */
export async function connectRedis(url: string, options: ConnectRedisOptions = {}): Promise<Redis> {
  const { connectTimeoutMs, ...ioredisOptions } = options;
  const client = new Redis({
    ...redisOptionsFromUrl(url),
    connectTimeout: connectTimeoutMs ?? 5_000,
    ...ioredisOptions,
    lazyConnect: true,
  });
  const steadyRetryStrategy = client.options.retryStrategy;
  client.options.retryStrategy = () => null;

  let lastError: Error | undefined;
  const recordError = (err: Error) => {
    lastError = err;
  };
  client.on('error', recordError);
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    const reason = describeConnectFailure(lastError ?? (err as Error));
    throw new ServiceError(
      `cannot connect to Redis at ${redactUrl(url)}: ${reason}. ` +
        'Check that the server is running and the URL (--redis or REDIS_URL) is right, or let horizon start a local redis-server.',
      { cause: lastError ?? err, retryable: true, context: { url: redactUrl(url) } },
    );
  } finally {
    client.off('error', recordError);
  }
  client.options.retryStrategy = steadyRetryStrategy;
  // Connection errors after this point surface as rejected commands (and ioredis reconnects); without a
  // listener ioredis would also print each one as an "Unhandled error event" — e.g. while shutting down.
  client.on('error', () => undefined);
  return client;
}

function describeConnectFailure(err: Error): string {
  const message = err.message ?? String(err);
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    return `authentication failed (${message}); put the password in the URL as redis://:PASSWORD@host:port`;
  }
  return message;
}
