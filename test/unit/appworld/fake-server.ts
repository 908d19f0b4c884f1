/**
 * A fake AppWorld environment server on 127.0.0.1 implementing the endpoints the adapter codes against
 * (POST /initialize, /execute, /task_completed, /evaluate, /close; bodies carry task_id; answers are
 * {"output": …}). It runs no code: /execute recognises the two calls its one task needs by text.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the fake misbehaves, per endpoint. */
export type Fault = 'http500' | 'badBody' | 'hang' | 'notJson';

/** A recorded request. */
export interface Recorded {
  readonly path: string;
  readonly body: Record<string, unknown>;
}

/** A running fake server. */
export interface FakeAppWorld {
  readonly url: string;
  readonly requests: Recorded[];
  /** Make an endpoint misbehave (undefined: behave). */
  readonly faults: Map<string, Fault>;
  stop(): Promise<void>;
}

export const FAKE_TASK = {
  task_id: 'fake_1',
  instruction: 'What is my wallet balance?',
  supervisor: { first_name: 'Joyce', last_name: 'Weaver', email: 'joyce@mail.com', phone_number: '3155673041' },
  datetime: '2023-05-18T12:00:00',
};

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Start the fake on a free loopback port. */
export async function startFakeAppWorld(): Promise<FakeAppWorld> {
  const requests: Recorded[] = [];
  const faults = new Map<string, Fault>();
  const worlds = new Map<string, { completed: boolean; answer?: string }>();
  const hanging = new Set<ServerResponse>();
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer(async (req, res) => {
    const path = req.url ?? '/';
    const body = await readBody(req);
    requests.push({ path, body });
    const fault = faults.get(path);
    if (fault === 'hang') {
      hanging.add(res);
      return;
    }
    if (fault === 'http500') return send(res, 500, { detail: 'Internal Server Error: something broke' });
    if (fault === 'badBody') return send(res, 200, { result: 'no output field' });
    if (fault === 'notJson') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('<html>proxy error</html>');
    }
    const taskId = String(body.task_id);
    const world = worlds.get(taskId);
    switch (path) {
      case '/initialize':
        if (taskId !== FAKE_TASK.task_id) return send(res, 422, { detail: `unknown task_id ${taskId}` });
        worlds.set(taskId, { completed: false });
        return send(res, 200, { output: FAKE_TASK });
      case '/execute': {
        if (!world) return send(res, 404, { detail: 'task not initialized' });
        const code = String(body.code);
        const lines: string[] = [];
        if (code.includes('apis.wallet.show_balance(')) lines.push("{'balance': 42.5}");
        const done = /apis\.supervisor\.complete_task\(\*\*\{"answer": "?([^"}]*)"?\}\)/.exec(code);
        if (done) {
          world.completed = true;
          world.answer = done[1];
          lines.push('Marked the active task complete.');
        }
        return send(res, 200, { output: lines.join('\n') });
      }
      case '/task_completed':
        return send(res, 200, { output: world?.completed ?? false });
      case '/evaluate': {
        const right = world?.answer === '42.5';
        return send(res, 200, {
          output: {
            success: right,
            difficulty: 1,
            num_tests: 2,
            passes: [
              { requirement: 'assert no model changes', label: 'no_op_pass' },
              ...(right ? [{ requirement: 'assert answer matches', label: null }] : []),
            ],
            failures: right ? [] : [{ requirement: 'assert answer matches', trace: 'AssertionError' }],
          },
        });
      }
      case '/close':
        worlds.delete(taskId);
        return send(res, 200, { output: null });
      default:
        return send(res, 404, { detail: 'Not Found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    stop: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
