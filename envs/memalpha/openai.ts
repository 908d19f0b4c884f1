/**
 * A minimal client for an OpenAI-compatible `POST {baseUrl}/chat/completions` endpoint (vLLM, SGLang,
 * llama.cpp server, OpenAI …), used by the LLM reader and the LLM judges. One request per call, a timeout
 * per attempt, retries with exponential backoff on transient failures (network error, timeout, HTTP 408,
 * 429, 5xx; a `Retry-After` of up to 30 s is honoured), none on the others (400, 401, 404 …: fix the
 * config). Failures are ServiceErrors naming the URL, the status and the start of the body.
 */
import { z } from 'zod';
import { ConfigError, ServiceError } from '../../core/errors.js';

/** Where and how to call the endpoint (the env's options schema documents the defaults). */
export interface ChatEndpoint {
  /** Base URL including the API version, as for the OpenAI SDK: `http://127.0.0.1:8000/v1`. */
  readonly baseUrl: string;
  /** Model name the server expects. */
  readonly model: string;
  /** Name of the environment variable holding the API key (sent as `Authorization: Bearer …`); none → no header. */
  readonly apiKeyEnv?: string;
  /** Per-attempt timeout in milliseconds. */
  readonly timeoutMs: number;
  /** Retries after the first attempt, for transient failures only. */
  readonly retries: number;
  /** Backoff before retry r (0-based) is retryDelayMs · 2^r. */
  readonly retryDelayMs: number;
  /** `max_tokens` of each completion. */
  readonly maxTokens: number;
  /** Sampling temperature (0: the reader and judges should be deterministic). */
  readonly temperature: number;
  /** Requests in flight at once when answering many questions. */
  readonly concurrency: number;
}

/** One chat message. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

const CompletionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable().optional() }) })).min(1, 'no choices'),
});

/** The endpoint's fetch: the global one, or a stand-in in tests. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<Response>;

/** Calls one endpoint. `label` names the user of the client in error messages (`reader`, `judge`). */
export class ChatClient {
  readonly url: string;
  private readonly apiKey: string | undefined;

  constructor(
    readonly endpoint: ChatEndpoint,
    readonly label: string,
    private readonly fetchImpl: FetchLike = (url, init) => fetch(url, init),
  ) {
    let parsed: URL;
    try {
      parsed = new URL(endpoint.baseUrl);
    } catch (err) {
      throw new ConfigError(`${label} endpoint: baseUrl ${JSON.stringify(endpoint.baseUrl)} is not a URL (e.g. http://127.0.0.1:8000/v1)`, {
        cause: err,
      });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new ConfigError(`${label} endpoint: baseUrl must be http(s), got ${parsed.protocol}`);
    this.url = `${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    if (endpoint.apiKeyEnv !== undefined) {
      const key = process.env[endpoint.apiKeyEnv];
      if (key === undefined || key === '') {
        throw new ConfigError(
          `${label} endpoint: environment variable ${endpoint.apiKeyEnv} (apiKeyEnv) is not set; export it or remove apiKeyEnv for a server without keys`,
        );
      }
      this.apiKey = key;
    }
  }

  /** The text of one completion of `messages` ('' when the server returns no content). */
  async complete(messages: readonly ChatMessage[]): Promise<string> {
    const body = JSON.stringify({
      model: this.endpoint.model,
      messages,
      max_tokens: this.endpoint.maxTokens,
      temperature: this.endpoint.temperature,
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    let lastError: ServiceError | undefined;
    for (let attempt = 0; attempt <= this.endpoint.retries; attempt++) {
      if (attempt > 0) await sleep(lastErrorDelay(lastError, this.endpoint.retryDelayMs * 2 ** (attempt - 1)));
      const result = await this.attempt(body, headers);
      if (typeof result === 'string') return result;
      lastError = result;
      if (!result.retryable) throw result;
    }
    throw new ServiceError(`${this.label} endpoint ${this.url} failed after ${this.endpoint.retries + 1} attempts: ${lastError?.message}`, {
      cause: lastError,
      retryable: true,
      context: { url: this.url },
    });
  }

  /** One request: the completion text, or the error (retryable or not). */
  private async attempt(body: string, headers: Record<string, string>): Promise<string | ServiceError> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.endpoint.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.url, { method: 'POST', headers, body, signal: controller.signal });
      text = await response.text();
    } catch (err) {
      const timedOut = controller.signal.aborted;
      return new ServiceError(
        timedOut
          ? `${this.label} endpoint ${this.url} did not answer within ${this.endpoint.timeoutMs} ms`
          : `${this.label} endpoint ${this.url} is unreachable (${(err as Error).message}); is the server running?`,
        { cause: err, retryable: true, context: { url: this.url } },
      );
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      const error = new ServiceError(
        `${this.label} endpoint ${this.url} answered ${response.status} ${response.statusText}: ${text.slice(0, 200)}` +
          (retryable ? '' : ' (check baseUrl, model and apiKeyEnv)'),
        { retryable, context: { url: this.url, status: response.status, retryAfter: response.headers.get('retry-after') } },
      );
      return error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return new ServiceError(`${this.label} endpoint ${this.url} returned a body that is not JSON: ${text.slice(0, 200)}`, {
        cause: err,
        context: { url: this.url },
      });
    }
    const parsed = CompletionSchema.safeParse(json);
    if (!parsed.success) {
      return new ServiceError(
        `${this.label} endpoint ${this.url} returned no chat completion (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}): ${text.slice(0, 200)}`,
        { context: { url: this.url } },
      );
    }
    return parsed.data.choices[0].message.content ?? '';
  }
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

function lastErrorDelay(error: ServiceError | undefined, backoffMs: number): number {
  const retryAfter = Number(error?.context.retryAfter);
  return Number.isFinite(retryAfter) && retryAfter > 0 && retryAfter <= 30 ? retryAfter * 1000 : backoffMs;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
