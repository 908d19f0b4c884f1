/**
 * A fake OpenAI-compatible server for tests: `POST /v1/chat/completions` on 127.0.0.1 (node:http), answered
 * by a handler the test sets; every request body is recorded.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake answers to one request. */
export interface FakeReply {
  readonly status?: number;
  /** Sent as a chat completion with this content (status 200 unless set). */
  readonly content?: string;
  /** Sent verbatim instead of a completion. */
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** Wait this long before answering. */
  readonly delayMs?: number;
}

/** A running fake endpoint. */
export interface FakeOpenAi {
  /** Base URL including /v1. */
  readonly baseUrl: string;
  /** Parsed JSON bodies of the requests so far, with their headers. */
  readonly requests: { body: any; headers: IncomingMessage['headers']; url: string }[];
  /** Replace the handler. */
  handle(handler: (body: any, index: number) => FakeReply): void;
  close(): Promise<void>;
}

/** Start a fake endpoint on a free loopback port. */
export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  let handler: (body: any, index: number) => FakeReply = () => ({ content: 'ok' });
  const requests: FakeOpenAi['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const index = requests.length;
      requests.push({ body, headers: req.headers, url: req.url ?? '' });
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
        return;
      }
      const reply = handler(body, index);
      const send = () => {
        if (res.destroyed) return;
        const text =
          reply.body ??
          JSON.stringify({
            id: `c${index}`,
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content: reply.content ?? '' }, finish_reason: 'stop' }],
          });
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers }).end(text);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    handle: (h) => {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
