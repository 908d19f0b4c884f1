import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceError } from '../../../core/errors.js';
import { connectRedis } from '../../../rollout/connection.js';
import { findRedisServerBinary, startRedisServer, type RedisServerHandle } from '../../../rollout/redis-server.js';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'horizon-redis-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('startRedisServer', () => {
  it('starts an AOF-persistent server that answers PING, and stop() ends the process', async () => {
    const dir = join(root, 'aof');
    const lines: string[] = [];
    const server = await startRedisServer({ dir, log: (line) => lines.push(line) });
    try {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(pidAlive(server.pid)).toBe(true);
      const redis = await connectRedis(server.url);
      try {
        expect(await redis.ping()).toBe('PONG');
        await redis.set('horizon-test:aof:key', 'value');
        expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        expect(await redis.config('GET', 'dir')).toEqual(['dir', dir]);
      } finally {
        redis.disconnect();
      }
      // Redis 7 keeps the AOF as a base + incremental file set under appendonlydir/.
      const aofDir = join(dir, 'appendonlydir');
      expect(existsSync(aofDir)).toBe(true);
      expect(readdirSync(aofDir).some((name) => name.endsWith('.incr.aof'))).toBe(true);
      expect(lines.some((line) => line.includes('Ready to accept connections'))).toBe(true);
    } finally {
      await server.stop();
    }
    expect(server.isRunning()).toBe(false);
    expect(pidAlive(server.pid)).toBe(false);
    await server.stop(); // idempotent
  });

  it('keeps data across a restart in the same dir (AOF replay)', async () => {
    const dir = join(root, 'restart');
    const first = await startRedisServer({ dir });
    const writer = await connectRedis(first.url);
    await writer.set('horizon-test:restart:k', 'survives');
    writer.disconnect();
    await first.stop();

    const second = await startRedisServer({ dir });
    try {
      const reader = await connectRedis(second.url);
      expect(await reader.get('horizon-test:restart:k')).toBe('survives');
      reader.disconnect();
    } finally {
      await second.stop();
    }
  });

  it('runs without persistence when appendOnly is false', async () => {
    const dir = join(root, 'volatile');
    const server = await startRedisServer({ dir, appendOnly: false });
    try {
      const redis = await connectRedis(server.url);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await redis.config('GET', 'save')).toEqual(['save', '']);
      redis.disconnect();
    } finally {
      await server.stop();
    }
    expect(existsSync(join(dir, 'appendonlydir'))).toBe(false);
  });

  describe('with a password', () => {
    let server: RedisServerHandle;
    const password = 'p@ss "word" /x';
    beforeAll(async () => {
      server = await startRedisServer({ dir: join(root, 'auth'), appendOnly: false, password });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('puts the encoded password in the url and keeps it out of the process arguments', () => {
      expect(server.url).toBe(`redis://:${encodeURIComponent(password)}@127.0.0.1:${server.port}`);
      const args = spawnSync('ps', ['-o', 'args=', '-p', String(server.pid)], { encoding: 'utf8' }).stdout;
      expect(args).toContain('redis-server');
      expect(args).not.toContain('word');
    });

    it('is reachable with the password', async () => {
      const redis = await connectRedis(`redis://:${encodeURIComponent(password)}@127.0.0.1:${server.port}`);
      expect(await redis.ping()).toBe('PONG');
      redis.disconnect();
    });

    it('refuses a client without the password with a clear ServiceError', async () => {
      const err = await caught(connectRedis(`redis://127.0.0.1:${server.port}`));
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as Error).message).toMatch(
        new RegExp(`cannot connect to Redis at redis://127\\.0\\.0\\.1:${server.port}: authentication failed \\(NOAUTH`),
      );
      expect((err as Error).message).toContain('redis://:PASSWORD@host:port');
    });

    it('refuses a wrong password and does not echo it', async () => {
      const err = await caught(connectRedis(`redis://:wrong-secret@127.0.0.1:${server.port}`));
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as Error).message).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: authentication failed \(WRONGPASS/);
      expect((err as Error).message).not.toContain('wrong-secret');
    });
  });

  it('connectRedis fails fast on a port where nothing listens', async () => {
    const probe = createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((resolve) => probe.close(resolve));
    const started = Date.now();
    const err = await caught(connectRedis(`redis://:secret@127.0.0.1:${port}/2`));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).retryable).toBe(true);
    expect((err as Error).message).toMatch(
      new RegExp(`cannot connect to Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/2: .*ECONNREFUSED`),
    );
  });

  it('reports a fixed port that is already taken, with the server log', async () => {
    // Drop connections at once: an accepted socket nobody reads would keep close() waiting.
    const blocker: Server = createServer((socket) => socket.destroy());
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const err = await caught(startRedisServer({ dir: join(root, 'taken'), port, appendOnly: false }));
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as Error).message).toMatch(new RegExp(`could not bind 127\\.0\\.0\\.1:${port}: address already in use`));
      expect((err as Error).message).toMatch(/redis-server output \(last \d+ lines\):[\s\S]*Address already in use/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('names the install command when the binary is missing', async () => {
    const missing = join(root, 'no-such-redis-server');
    expect(() => findRedisServerBinary(missing)).toThrow(ServiceError);
    const err = await caught(startRedisServer({ dir: join(root, 'missing'), binary: missing }));
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toContain(`redis-server executable not found at ${missing}`);
    expect((err as Error).message).toContain('apt-get install -y redis-server');
    expect((err as Error).message).toContain('horizon setup script');
  });

  it('reports a server that exits during start-up, with its exit code and output', async () => {
    const fake = join(root, 'exits-early.sh');
    writeFileSync(fake, '#!/bin/sh\necho "FATAL CONFIG FILE ERROR (fake)" >&2\nexit 3\n');
    chmodSync(fake, 0o755);
    const err = await caught(startRedisServer({ dir: join(root, 'early'), binary: fake }));
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toMatch(/redis-server exited with code 3 before accepting connections \(port \d+, dir .*early\)/);
    expect((err as Error).message).toContain('FATAL CONFIG FILE ERROR (fake)');
  });

  it('gives up after startTimeoutMs when nothing answers PING, and kills the child', async () => {
    const fake = join(root, 'never-ready.sh');
    const pidFile = join(root, 'never-ready.pid');
    writeFileSync(fake, `#!/bin/sh\necho $$ > ${pidFile}\necho "warming up"\nexec sleep 30\n`);
    chmodSync(fake, 0o755);
    const started = Date.now();
    const err = await caught(startRedisServer({ dir: join(root, 'slow'), binary: fake, startTimeoutMs: 600 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toMatch(/did not answer PING on 127\.0\.0\.1:\d+ within 600 ms; it was killed/);
    expect((err as Error).message).toContain('warming up');
    expect(pidAlive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('refuses a data dir that cannot be created', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const err = await caught(startRedisServer({ dir: join(file, 'sub') }));
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toMatch(/cannot create the redis-server data directory .*a-file\/sub/);
  });
});

describe('stopOnExit', () => {
  const childScript = fileURLToPath(new URL('./fixtures/stop-on-exit-child.ts', import.meta.url));

  /** True while `pid` is a live process (a zombie waiting to be reaped counts as gone). */
  function processRunning(pid: number): boolean {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  }

  async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (condition()) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return condition();
  }

  /** Start the fixture and resolve with its redis pid once it printed it. */
  function startChild(mode: string): Promise<{
    child: ChildProcess;
    redisPid: number;
    output: () => string;
    exited: Promise<{ code: number | null; signal: string | null }>;
  }> {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript, mode, join(root, `child-${mode}`)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    return new Promise((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /\{"pid":(\d+),"port":\d+\}/.exec(output);
        if (match) resolve({ child, redisPid: Number(match[1]), output: () => output, exited });
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      void exited.then(() => reject(new Error(`fixture exited before starting redis:\n${output}`)));
    });
  }

  it('stops the server when the program ends on its own', async () => {
    const { redisPid, exited } = await startChild('natural');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(await waitFor(() => !processRunning(redisPid), 5_000)).toBe(true);
  });

  it('stops the server on SIGINT and then ends the program with SIGINT', async () => {
    const { child, redisPid, exited } = await startChild('wait');
    expect(processRunning(redisPid)).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toEqual({ code: null, signal: 'SIGINT' });
    expect(processRunning(redisPid)).toBe(false);
  });

  it('leaves the exit to a program with its own handler, and a second SIGINT forces it', async () => {
    const { child, redisPid, exited, output } = await startChild('own-handler');
    child.kill('SIGINT');
    expect(await waitFor(() => !processRunning(redisPid), 5_000)).toBe(true);
    expect(await waitFor(() => output().includes('own handler saw SIGINT'), 2_000)).toBe(true);
    expect(child.exitCode).toBeNull();
    child.kill('SIGINT');
    expect(await exited).toEqual({ code: 130, signal: null });
  });
});
