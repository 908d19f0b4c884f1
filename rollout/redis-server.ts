/**
 * Run a private `redis-server` child process for a training run: bound to loopback on a free port, data in
 * the run's directory (AOF persistence by default, so queued rollouts and weights survive a restart), and
 * stopped when the parent exits. The configuration goes to the server on stdin, which keeps a password out
 * of the process list.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { ServiceError } from '../core/errors.js';

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Working directory of the server: AOF files (`appendonlydir/`) are written here. Created if missing. */
  dir: string;
  /** Fixed port; by default a free port is picked (and re-picked if another process takes it first). */
  port?: number;
  /** Persist every write to an append-only file (default true). False runs a throwaway in-memory server. */
  appendOnly?: boolean;
  /** Require this password (`redis://:password@127.0.0.1:port`). */
  password?: string;
  /** Receives each line the server logs. */
  log?: (line: string) => void;
  /** How long to wait for the first PONG (default 15 s). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
  /** Path of the binary; by default PATH, then /usr/bin and /usr/local/bin are searched. */
  binary?: string;
}

/** A running server. */
export interface RedisServerHandle {
  /** Connection URL, including the password when one is set (redact it before logging). */
  url: string;
  /** Loopback port the server listens on. */
  port: number;
  /** Process id of the redis-server child. */
  pid: number;
  /** Graceful stop (the server flushes its AOF on SIGTERM), SIGKILL after the timeout. Idempotent. */
  stop(): Promise<void>;
  /** False once the child process has exited. */
  isRunning(): boolean;
}

const INSTALL_HINT =
  'Install it with `apt-get install -y redis-server` (Debian/Ubuntu; the horizon setup script does this when run as root), ' +
  'or point REDIS_URL at an existing Redis >= 6.2.';
const FALLBACK_BINARIES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];
const OUTPUT_TAIL_LINES = 40;
const PORT_RACE_ATTEMPTS = 5;

/** Locate the `redis-server` executable, or throw a ServiceError that says how to install it. */
export function findRedisServerBinary(explicit?: string): string {
  const candidates =
    explicit !== undefined
      ? [explicit]
      : [
          ...(process.env.PATH ?? '')
            .split(delimiter)
            .filter((dir) => dir !== '')
            .map((dir) => join(dir, 'redis-server')),
          ...FALLBACK_BINARIES,
        ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here or not executable; try the next location.
    }
  }
  const where = explicit !== undefined ? `at ${explicit}` : `on PATH or in ${FALLBACK_BINARIES.join(', ')}`;
  throw new ServiceError(`redis-server executable not found ${where}. ${INSTALL_HINT}`, { context: { candidates } });
}

/**
 * Start `redis-server` and resolve once it answers PING. Throws ServiceError when the binary is missing,
 * the process exits early, or it does not answer within `startTimeoutMs` (the message carries its log tail).
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServerHandle> {
  const binary = findRedisServerBinary(options.binary);
  const dir = resolve(options.dir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new ServiceError(`cannot create the redis-server data directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const attempts = options.port === undefined ? PORT_RACE_ATTEMPTS : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await pickFreePort());
    try {
      return await launch(binary, dir, port, options);
    } catch (err) {
      lastError = err;
      // Another process can bind the port between our probe and the server's bind: pick a new one.
      if (!(err instanceof PortInUseError) || options.port !== undefined) break;
    }
  }
  if (lastError instanceof PortInUseError) {
    throw new ServiceError(
      options.port !== undefined
        ? `redis-server could not bind 127.0.0.1:${options.port}: address already in use. Choose another port or omit it to pick a free one.\n${lastError.outputTail}`
        : `redis-server could not find a free port after ${attempts} attempts (each was taken before the server bound it).\n${lastError.outputTail}`,
      { cause: lastError, retryable: true },
    );
  }
  throw lastError;
}

class PortInUseError extends Error {
  constructor(readonly outputTail: string) {
    super('address already in use');
  }
}

/** A free loopback port: bind port 0, read the port the kernel chose, release it. */
export function pickFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error('could not read the port chosen by the kernel'))));
    });
  });
}

/** Quote a value for redis.conf (double quotes with backslash escapes, as redis's argument splitter reads them). */
function confQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

function buildConfig(dir: string, port: number, options: RedisServerOptions): string {
  const lines = [
    `port ${port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    'daemonize no',
    'logfile ""',
    `dir ${confQuote(dir)}`,
    // RDB snapshots are off either way: with AOF they would duplicate every write; without, the data is throwaway.
    'save ""',
    `appendonly ${options.appendOnly === false ? 'no' : 'yes'}`,
  ];
  if (options.password !== undefined) lines.push(`requirepass ${confQuote(options.password)}`);
  return `${lines.join('\n')}\n`;
}

async function launch(binary: string, dir: string, port: number, options: RedisServerOptions): Promise<RedisServerHandle> {
  const tail: string[] = [];
  const outputTail = () =>
    tail.length ? `redis-server output (last ${tail.length} lines):\n${tail.join('\n')}` : 'redis-server printed nothing.';

  let child: ChildProcess;
  try {
    // Own process group: a Ctrl-C in the terminal reaches the parent, which then stops the server in order.
    child = spawn(binary, ['-'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  } catch (err) {
    throw new ServiceError(`could not start ${binary}: ${(err as Error).message}. ${INSTALL_HINT}`, { cause: err });
  }

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolveExit();
    });
  });
  const closed = new Promise<void>((resolveClose) => child.once('close', () => resolveClose()));
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const addLine = (line: string) => {
    if (line.trim() === '') return;
    tail.push(line);
    if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    options.log?.(line);
  };
  for (const stream of [child.stdout, child.stderr]) {
    // A chunk can end mid-line; hold the partial line until its newline (or the end of the stream).
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      lines.forEach(addLine);
    });
    stream?.on('end', () => addLine(partial));
  }
  child.stdin?.on('error', () => {
    // The server may exit before reading its config (bad binary); the exit path reports that.
  });
  child.stdin?.end(buildConfig(dir, port, options));

  // Neither the child nor its pipes keep the parent's event loop alive; stopOnExit cleans up at exit.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();

  /** Wait for the child to exit, at most `ms`; the timer keeps the event loop alive meanwhile. */
  const exitsWithin = async (ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolveTimeout) => {
      timer = setTimeout(() => resolveTimeout(false), ms);
    });
    try {
      return await Promise.race([exited.then(() => true as const), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (true) {
    if (spawnError !== undefined) {
      throw new ServiceError(`could not start ${binary}: ${spawnError.message}. ${INSTALL_HINT}`, { cause: spawnError });
    }
    if (exitInfo !== undefined) {
      // 'exit' can precede the last output; 'close' comes once the pipes are drained.
      await Promise.race([closed, sleep(1_000)]);
      const text = tail.join('\n');
      if (/Address already in use/i.test(text)) throw new PortInUseError(outputTail());
      const how = exitInfo.signal !== null ? `was killed by ${exitInfo.signal}` : `exited with code ${exitInfo.code}`;
      throw new ServiceError(`redis-server ${how} before accepting connections (port ${port}, dir ${dir}).\n${outputTail()}`);
    }
    const reply = await pingOnce(port, options.password, 1_000);
    if (reply === 'PONG') break;
    if (reply !== undefined && /^(WRONGPASS|NOAUTH|ERR AUTH)/.test(reply)) {
      signalChild(child, 'SIGKILL');
      throw new ServiceError(`port ${port} is served by another Redis that rejected our password (${reply}).`);
    }
    if (Date.now() > deadline) {
      signalChild(child, 'SIGKILL');
      await exitsWithin(2_000);
      throw new ServiceError(
        `redis-server (pid ${child.pid}) did not answer PING on 127.0.0.1:${port} within ${options.startTimeoutMs ?? 15_000} ms` +
          `${reply !== undefined ? ` (last reply: ${reply})` : ''}; it was killed.\n${outputTail()}`,
        { retryable: true },
      );
    }
    await sleep(50);
  }

  const pid = child.pid as number;
  const auth = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  let stopping: Promise<void> | undefined;
  const handle: RedisServerHandle = {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    pid,
    isRunning: () => exitInfo === undefined,
    stop: () => {
      stopping ??= (async () => {
        if (exitInfo !== undefined) return;
        // redis-server treats SIGTERM like SHUTDOWN: it fsyncs the AOF and exits.
        signalChild(child, 'SIGTERM');
        if (!(await exitsWithin(options.stopTimeoutMs ?? 10_000))) {
          options.log?.(`redis-server (pid ${pid}) ignored SIGTERM; sending SIGKILL`);
          signalChild(child, 'SIGKILL');
          await exited;
        }
        registry.delete(handle);
      })();
      return stopping;
    },
  };
  return handle;
}

function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    child.kill(signal);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Encode a command as a RESP array of bulk strings. */
function respCommand(...parts: string[]): Buffer {
  const chunks = [`*${parts.length}\r\n`];
  for (const part of parts) chunks.push(`$${Buffer.byteLength(part)}\r\n${part}\r\n`);
  return Buffer.from(chunks.join(''));
}

/**
 * One raw PING (after AUTH when a password is set). Resolves to the last simple/error reply text
 * ('PONG', 'LOADING …', 'WRONGPASS …'), or undefined when the port does not accept connections yet.
 */
function pingOnce(port: number, password: string | undefined, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buffered = '';
    const expected = password !== undefined ? 2 : 1;
    const finish = (value: string | undefined) => {
      socket.destroy();
      clearTimeout(timer);
      resolvePing(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('error', () => finish(undefined));
    socket.once('connect', () => {
      socket.write(password !== undefined ? Buffer.concat([respCommand('AUTH', password), respCommand('PING')]) : respCommand('PING'));
    });
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const replies = buffered.split('\r\n').filter((line) => line !== '');
      const firstError = replies.find((line) => line.startsWith('-'));
      if (firstError !== undefined) return finish(firstError.slice(1));
      if (replies.length >= expected) finish(replies[expected - 1].replace(/^\+/, ''));
    });
    socket.once('close', () => finish(buffered === '' ? undefined : buffered.trim()));
  });
}

const registry = new Set<RedisServerHandle>();
let hooksInstalled = false;
let signalsSeen = 0;

/**
 * Stop `handle` when this process ends: on normal exit (SIGTERM to the server, synchronously), and on
 * SIGINT/SIGTERM (graceful stop of every registered server, then the signal's default action unless the
 * program has its own handler for it). A second signal while stopping kills the servers and exits at once.
 * Returns a function that unregisters the handle.
 */
export function stopOnExit(handle: RedisServerHandle): () => void {
  registry.add(handle);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', () => killRegisteredSync('SIGTERM'));
    process.on('SIGINT', onTerminatingSignal);
    process.on('SIGTERM', onTerminatingSignal);
  }
  return () => {
    registry.delete(handle);
  };
}

function killRegisteredSync(signal: NodeJS.Signals): void {
  for (const handle of registry) {
    if (!handle.isRunning()) continue;
    try {
      process.kill(handle.pid, signal);
    } catch {
      // Exited in the meantime.
    }
  }
}

const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

function onTerminatingSignal(signal: NodeJS.Signals): void {
  signalsSeen += 1;
  if (signalsSeen > 1) {
    killRegisteredSync('SIGKILL');
    process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
  }
  void Promise.allSettled([...registry].map((handle) => handle.stop())).then(() => {
    // Only our listener: nobody else will end the process, so do what the signal would have done.
    if (process.listenerCount(signal) === 1) {
      process.removeListener('SIGINT', onTerminatingSignal);
      process.removeListener('SIGTERM', onTerminatingSignal);
      process.kill(process.pid, signal);
    }
  });
}
