/** Test helpers: a throwaway real redis-server, unique key prefixes, and running the real CLI. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { connectRedis } from '../../rollout/connection.js';
import { startRedisServer, type RedisServerHandle } from '../../rollout/redis-server.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(REPO, 'bin', 'horizon.js');

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(label: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `horizon-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A real redis-server without persistence, on a free loopback port. */
export async function testRedis(): Promise<{ server: RedisServerHandle; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = tempDir('redis');
  const server = await startRedisServer({ dir, appendOnly: false });
  return {
    server,
    cleanup: async () => {
      await server.stop();
      cleanup();
    },
  };
}

let prefixCounter = 0;
/** A key prefix no other test uses. */
export function uniquePrefix(label: string): string {
  return `t-${label}-${process.pid}-${++prefixCounter}`;
}

/** A `horizon` child process with its output collected. */
export interface CliProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
}

/** Start `horizon <args>` from the repository root. */
export function startCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => out, exited };
}

/** Run `horizon <args>` to completion. */
export async function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | string; output: string }> {
  const proc = startCli(args, options);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, output: proc.output() };
}

/** Poll `check` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * One real redis-server and a client for a whole test file: registers beforeAll/afterAll and returns
 * accessors (valid inside tests).
 */
export function useTestRedis(): { url: () => string; client: () => import('ioredis').Redis } {
  let handle: Awaited<ReturnType<typeof testRedis>> | undefined;
  let client: import('ioredis').Redis | undefined;
  beforeAll(async () => {
    handle = await testRedis();
    client = await connectRedis(handle.server.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await handle?.cleanup();
  });
  return { url: () => handle!.server.url, client: () => client! };
}
