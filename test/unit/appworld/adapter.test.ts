/**
 * The AppWorld adapter against a fake environment server (fake-server.ts): the requests it sends, the
 * episode it plays, its score, and its errors. This is the only server it has been run against.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, EnvError } from '../../../core/errors.js';
import {
  AppWorldEnv,
  appworldEnv,
  appworldOptionsSchema,
  callToCode,
  extractCode,
  pythonLiteral,
  type AppWorldOptions,
} from '../../../envs/appworld/env.js';
import { validateEnvOptions } from '../../../envs/loader.js';
import { getBuiltinEnv } from '../../../envs/registry.js';
import { FAKE_TASK, startFakeAppWorld, type FakeAppWorld } from './fake-server.js';

let fake: FakeAppWorld;
let second: FakeAppWorld;
const open: AppWorldEnv[] = [];

beforeAll(async () => {
  fake = await startFakeAppWorld();
  second = await startFakeAppWorld();
});
afterAll(async () => {
  await fake.stop();
  await second.stop();
});
afterEach(async () => {
  for (const env of open.splice(0)) await env.close();
  fake.requests.length = 0;
  fake.faults.clear();
});

function options(extra: Record<string, unknown> = {}): AppWorldOptions {
  return appworldOptionsSchema.parse({
    url: fake.url,
    tasks: { train: [FAKE_TASK.task_id, 'missing_1'] },
    retries: 0,
    leaseTimeoutMs: 0,
    ...extra,
  });
}

function env(extra: Record<string, unknown> = {}): AppWorldEnv {
  const e = new AppWorldEnv(options(extra));
  open.push(e);
  return e;
}

const task = { split: 'train', index: 0, seed: 0 };

describe('appworld registration', () => {
  it('is the built-in `appworld`; its options need a URL and count tasks per split', () => {
    expect(getBuiltinEnv('appworld')).toBe(appworldEnv);
    expect(() => validateEnvOptions(appworldEnv, {})).toThrow(/env\.options\.url/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'appworld-tasks-'));
    try {
      const file = path.join(dir, 'tasks.json');
      writeFileSync(file, JSON.stringify({ train: ['a_1', 'a_2'], test_normal: ['b_1'] }));
      const parsed = validateEnvOptions(appworldEnv, { url: 'http://127.0.0.1:1', tasks: { train: ['c_1'] }, tasksFile: file });
      expect(['train', 'test_normal', 'dev'].map((s) => appworldEnv.taskCount(s, parsed))).toEqual([3, 1, 0]);
      writeFileSync(path.join(dir, 'bad.json'), '[1, 2]');
      expect(() =>
        appworldEnv.taskCount(
          'train',
          validateEnvOptions(appworldEnv, { url: 'http://127.0.0.1:1', tasksFile: path.join(dir, 'bad.json') }),
        ),
      ).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('turning messages into code', () => {
  it('writes JSON values as Python literals and calls as print(apis.app.api(**{...}))', () => {
    expect(pythonLiteral({ a: [1, true, null, 'x"y\n'], 'b c': { d: false, e: 2.5 } })).toBe(
      '{"a": [1, True, None, "x\\"y\\n"], "b c": {"d": False, "e": 2.5}}',
    );
    expect(callToCode({ app: 'spotify', api: 'show_song', args: { song_id: 7 } })).toBe('print(apis.spotify.show_song(**{"song_id": 7}))');
    expect(callToCode({ app: 'a', api: 'b', args: { code: "__import__('os')" } })).toBe(
      'print(apis.a.b(**{"code": "__import__(\'os\')"}))',
    );
  });

  it('takes the ```python blocks of a code message, else the whole message', () => {
    expect(extractCode('Let me check.\n```python\nprint(1)\n```\nand\n```\nprint(2)\n```')).toBe('print(1)\n\nprint(2)');
    expect(extractCode('  print(apis.supervisor.show_profile())  ')).toBe('print(apis.supervisor.show_profile())');
  });
});

describe('an AppWorld episode', () => {
  it('initialises, runs calls as code, ends at complete_task, evaluates once and closes', async () => {
    const e = env();
    const prompt = await e.reset(task);
    expect(prompt).toBe(
      'I am Joyce Weaver (joyce@mail.com, 3155673041). It is 2023-05-18T12:00:00.\nTask: What is my wallet balance?\n' +
        'Act with API calls, one per line: app.api {"arg": value}. Find APIs with api_docs.show_app_descriptions, api_docs.show_api_descriptions {"app_name": ...} and api_docs.show_api_doc {"app_name": ..., "api_name": ...}.\n' +
        'When done: supervisor.complete_task, with answer=... if the task asks a question.\n',
    );
    expect(await e.step('wallet.show_balance')).toEqual({ observation: "{'balance': 42.5}\n", done: false });
    expect(await e.step('supervisor.complete_task {"answer": "42.5"}')).toEqual({
      observation: 'Marked the active task complete.\n',
      done: true,
    });
    const reward = await e.score();
    expect(reward).toEqual({
      total: 1,
      parts: { passed_all: 1, checks_passed: 2, checks_total: 2, completed: 1, turns: 2, parse_errors: 0 },
    });
    expect(await e.score()).toEqual(reward);
    await e.close();
    expect(fake.requests).toEqual([
      { path: '/initialize', body: { task_id: 'fake_1', experiment_name: 'horizon' } },
      { path: '/execute', body: { task_id: 'fake_1', code: 'print(apis.wallet.show_balance(**{}))' } },
      { path: '/task_completed', body: { task_id: 'fake_1' } },
      { path: '/execute', body: { task_id: 'fake_1', code: 'print(apis.supervisor.complete_task(**{"answer": "42.5"}))' } },
      { path: '/task_completed', body: { task_id: 'fake_1' } },
      { path: '/evaluate', body: { task_id: 'fake_1', suppress_errors: true } },
      { path: '/close', body: { task_id: 'fake_1' } },
    ]);
  });

  it('scores a wrong answer by the share of tests passed, and ends at the turn cap', async () => {
    const e = env({ maxTurns: 2 });
    await e.reset(task);
    expect((await e.step('supervisor.show_profile')).done).toBe(false);
    expect(await e.step('supervisor.complete_task {"answer": "7"}')).toMatchObject({ done: true });
    expect(await e.score()).toMatchObject({ total: 0.5, parts: { passed_all: 0, checks_passed: 1, checks_total: 2 } });
    const capped = env({ maxTurns: 1 });
    // Only one server: the first episode must give it back first.
    await e.close();
    await capped.reset(task);
    expect((await capped.step('supervisor.show_profile')).done).toBe(true);
  });

  it('sends a code message as written and answers an unparseable calls message without running anything', async () => {
    const e = env({ actions: 'code' });
    await e.reset(task);
    await e.step('```python\nprint(apis.wallet.show_balance())\n```');
    expect(fake.requests.at(-2)).toEqual({ path: '/execute', body: { task_id: 'fake_1', code: 'print(apis.wallet.show_balance())' } });
    await e.close();
    const calls = env();
    await calls.reset(task);
    const before = fake.requests.length;
    expect((await calls.step('print(apis.wallet.show_balance())')).observation).toMatch(
      /^error: line 1: expected a call like .* Nothing was run\./,
    );
    expect((await calls.step('# nothing')).observation).toBe(
      'error: no API call found. Write one call per line: app.api {"arg": value}.\n',
    );
    expect(fake.requests.length).toBe(before);
    expect((await calls.score()).parts.parse_errors).toBe(2);
  });
});

describe('adapter errors', () => {
  it('reports an HTTP error status with the body, and gives the server back', async () => {
    fake.faults.set('/initialize', 'http500');
    const e = env();
    const err = await e.reset(task).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EnvError);
    expect((err as Error).message).toBe(
      `AppWorld server ${fake.url} answered HTTP 500 to POST /initialize: {"detail":"Internal Server Error: something broke"}`,
    );
    fake.faults.clear();
    await env().reset(task); // the lease was released
  });

  it('reports a body that breaks the protocol, naming what is missing', async () => {
    const e = env();
    await e.reset(task);
    fake.faults.set('/evaluate', 'badBody');
    await expect(e.score()).rejects.toThrow(/unexpected response of AppWorld server .* to POST \/evaluate \(output: .*\)/);
    fake.faults.set('/execute', 'notJson');
    await expect(e.step('supervisor.show_profile')).rejects.toThrow(
      /sent a body that is not JSON for POST \/execute: <html>proxy error<\/html>/,
    );
  });

  it('times out a request that gets no answer, and reports an unreachable server after its retries', async () => {
    const e = env({ timeoutMs: 150 });
    await e.reset(task);
    fake.faults.set('/execute', 'hang');
    await expect(e.step('supervisor.show_profile')).rejects.toThrow(
      `AppWorld server ${fake.url} unreachable for POST /execute after 1 attempt(s): no answer within 150 ms`,
    );
    const gone = await startFakeAppWorld();
    await gone.stop(); // a port nothing listens on any more
    const closed = new AppWorldEnv(
      appworldOptionsSchema.parse({ url: gone.url, tasks: { train: ['x_1'] }, retries: 1, backoffMs: 5, leaseTimeoutMs: 0 }),
    );
    const err = await closed.reset({ split: 'train', index: 0, seed: 0 }).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(
      /^AppWorld server http:\/\/127\.0\.0\.1:\d+ unreachable for POST \/initialize after 2 attempt\(s\): fetch failed \(.*ECONNREFUSED.*\); is `appworld serve environment` running there\?$/,
    );
    expect((err as EnvError).retryable).toBe(true);
  });

  it("refuses a task index beyond the split, and an unknown task id is the server's HTTP error", async () => {
    await expect(env().reset({ split: 'train', index: 5, seed: 0 })).rejects.toThrow(ConfigError);
    await expect(env().reset({ split: 'train', index: 1, seed: 0 })).rejects.toThrow(
      /HTTP 422 to POST \/initialize: .*unknown task_id missing_1/,
    );
  });

  it('leases one server per live episode, across URLs, and says what to do when none is free', async () => {
    const a = env({ url: [fake.url, second.url] });
    const b = env({ url: [fake.url, second.url] });
    await a.reset(task);
    await b.reset(task);
    expect(fake.requests.filter((r) => r.path === '/initialize')).toHaveLength(1);
    const c = env({ url: [fake.url, second.url], leaseTimeoutMs: 50 });
    await expect(c.reset(task)).rejects.toThrow(
      /no free AppWorld server among 2 URL\(s\) .* after 50 ms: each live episode needs its own server/,
    );
    await a.close();
    await c.reset(task);
  });
});
