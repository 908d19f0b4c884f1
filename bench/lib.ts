/**
 * Shared pieces of the CPU benchmarks: the machine line, markdown tables, small statistics, and the
 * throwaway services a benchmark needs (a redis-server, a running training-job record, published
 * weights, `horizon worker` processes). Benchmarks measure and print; nothing here asserts a timing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfigFile, type ResolvedConfig } from '../configs/resolve.js';
import { loadEnvDefinition, validateEnvOptions } from '../envs/loader.js';
import type { EnvDefinition, TaskRef } from '../envs/types.js';
import { selectBackend } from '../models/backend.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { JobControl } from '../rollout/jobs.js';
import { GroupResultSchema, QUEUES, jobKeys, parsePayload, type GroupResult } from '../rollout/protocol.js';
import { queueConnection } from '../rollout/queue-connection.js';
import { startRedisServer, stopOnExit, type RedisServerHandle } from '../rollout/redis-server.js';
import { WeightStore } from '../rollout/weight-store.js';
import { dispatchGroups, type IterationRequest } from '../trainer/collect.js';
import { TaskSampler } from '../trainer/tasks.js';

/** Repository root (benchmarks resolve configs and the CLI against it, whatever the working directory). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The `horizon` entry point. */
export const HORIZON_BIN = path.join(REPO_ROOT, 'bin', 'horizon.js');

// ─── Machine ───────────────────────────────────────────────────────────────────────────────────────

/** Where a benchmark ran; printed with every table so numbers are never read without their machine. */
export interface MachineInfo {
  readonly cpuModel: string;
  /** CPUs this process may use (cgroup/affinity aware). */
  readonly cores: number;
  readonly node: string;
  /** tfjs backend the measured processes used. */
  readonly backend: string;
  /** 1-minute load average when the benchmark started: a shared machine shows it here. */
  readonly loadAverage1m: number;
  readonly date: string;
}

/** The CPU model from /proc/cpuinfo (falls back to os.cpus() off Linux). */
export function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // Not Linux: use what Node reports.
  }
  return os.cpus()[0]?.model ?? 'unknown CPU';
}

/** Describe this machine; `backend` is the one the measured code ran on. */
export function machineInfo(backend: string, loadAverage1m = os.loadavg()[0]): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    node: process.version,
    backend,
    loadAverage1m,
    date: new Date().toISOString().slice(0, 10),
  };
}

/** One line: `machine: AMD EPYC, 2 cores, Node v20.20.2, backend wasm, load average 1.2 at start (2026-11-26)`. */
export function machineLine(info: MachineInfo): string {
  return `machine: ${info.cpuModel}, ${info.cores} cores, Node ${info.node}, backend ${info.backend}, load average ${info.loadAverage1m.toFixed(1)} at start (${info.date})`;
}

// ─── Output ────────────────────────────────────────────────────────────────────────────────────────

/** A GitHub-flavoured markdown table; numeric-looking columns are right-aligned. */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = rows.map((row) => row.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const looksNumeric = (cell: string) => /^[-+]?[\d.,]+(\s?[%×x])?$|^–$/.test(cell);
  const numeric = headers.map((_, i) => {
    const column = cells.map((row) => row[i] ?? '').filter((cell) => cell !== '');
    return column.length > 0 && column.every(looksNumeric);
  });
  const widths = headers.map((h, i) => Math.max(h.length, 3, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: readonly string[]) =>
    `| ${values.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(headers), rule, ...cells.map((row) => line(headers.map((_, i) => row[i] ?? '')))].join('\n');
}

/** Integers as they are; otherwise about three significant digits; thousands separators for large values. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return '0';
  return value.toPrecision(2);
}

/** Write `data` as JSON when `--json <file>` was given. */
export function writeJsonIfAsked(file: string | undefined, data: unknown): void {
  if (file) writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}

/** Progress for the person watching; stderr so stdout stays a clean markdown report. */
export function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

// ─── Arguments ─────────────────────────────────────────────────────────────────────────────────────

/**
 * Parse `--name value` flags with defaults; a flag whose default is an array may repeat. `--help` prints
 * `usage` and exits; an unknown flag prints the usage and exits with code 2.
 */
export function parseFlags<T extends Record<string, string | boolean | string[]>>(usage: string, defaults: T): T {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const [name, value] of Object.entries(defaults)) {
    options[name] = Array.isArray(value) ? { type: 'string', multiple: true } : { type: typeof value === 'boolean' ? 'boolean' : 'string' };
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: process.argv.slice(2), options, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return { ...defaults, ...Object.fromEntries(Object.entries(values).filter(([k]) => k !== 'help')) } as T;
}

/** A flag that must be a whole number ≥ `min`. */
export function intFlag(value: string | boolean | string[], name: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} expects a whole number ≥ ${min}, got "${String(value)}"\n`);
    process.exit(2);
  }
  return n;
}

// ─── Statistics ────────────────────────────────────────────────────────────────────────────────────

/** Arithmetic mean (0 for none). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Percentile by linear interpolation between closest ranks, p ∈ [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** Least-squares slope dy/dx of the points (NaN with fewer than two distinct x). */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = mean(points.map((p) => p.x));
  const my = mean(points.map((p) => p.y));
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ─── Services ──────────────────────────────────────────────────────────────────────────────────────

/** A temporary directory that the benchmark removes when it is done. */
export function scratchDir(label: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `horizon-bench-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A throwaway in-memory redis-server (no AOF) in a scratch directory; `stop()` also removes the directory. */
export async function startBenchRedis(): Promise<{ server: RedisServerHandle; stop: () => Promise<void> }> {
  const scratch = scratchDir('redis');
  const server = await startRedisServer({ dir: scratch.dir, appendOnly: false });
  const unregister = stopOnExit(server);
  return {
    server,
    stop: async () => {
      await server.stop();
      unregister();
      scratch.remove();
    },
  };
}

/** Load a config from a repository-relative (or absolute) path with `--set` style overrides. */
export function benchConfig(file: string, overrides: readonly string[] = []): ResolvedConfig {
  return loadConfigFile(path.resolve(REPO_ROOT, file), overrides);
}

/**
 * Create the Redis record of a training job the way a learner finds and starts it: stored config and
 * status hash (JobControl.submit without enqueueing), then state=running, attempt=1 — so workers accept
 * its groups. Returns the attempt number groups must carry.
 */
export async function createRunningJob(
  redis: Redis,
  redisUrl: string,
  prefix: string,
  config: ResolvedConfig,
  jobId: string,
): Promise<number> {
  const jobs = new JobControl(redis, redisUrl, { prefix });
  try {
    await jobs.submit(config, { jobId, enqueue: false });
  } finally {
    await jobs.close();
  }
  const attempt = 1;
  await redis.hset(jobKeys(prefix, jobId).status, { state: 'running', attempt, startedAt: Date.now() });
  return attempt;
}

/**
 * Build the config's policy (its seed's initial weights, or `weightsFile` — a model.safetensors — when
 * given) and return its safetensors bytes; the tfjs backend must already be selected. The policy is disposed.
 */
export function policyBytes(config: ResolvedConfig, weightsFile?: string): Uint8Array {
  const policy = new TransformerPolicy(resolvePolicyConfig({ ...config.model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE }), config.seed);
  try {
    if (weightsFile) policy.loadSafetensors(readFileSync(weightsFile));
    return policy.toSafetensors();
  } finally {
    policy.dispose();
  }
}

/** Publish `bytes` as version `version` of `jobId` in the WeightStore, as the learner does before iteration 0. */
export async function publishWeights(redis: Redis, prefix: string, jobId: string, version: number, bytes: Uint8Array): Promise<void> {
  await new WeightStore(redis, { prefix }).put(jobId, version, bytes);
}

/** Activate the backend a worker would use for `config` in this process; returns its name. */
export async function selectWorkerBackend(config: ResolvedConfig, override?: string): Promise<string> {
  const requested = (override || config.workers.backend || config.backend) as Parameters<typeof selectBackend>[0];
  return (await selectBackend(requested)).name;
}

/** A `horizon worker` child process. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the worker logged that it is ready to take groups. */
  readonly ready: Promise<void>;
  /** Backend the worker reported (after its first group), if it did. */
  backend(): string | undefined;
  /** Everything the worker printed (for error messages). */
  output(): string;
  /** SIGTERM (the worker finishes its group), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Worker children still running; killed when the benchmark exits, however it exits. */
const liveWorkers = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Spawn `node bin/horizon.js worker --redis URL --prefix P` and watch its log for readiness. */
export function spawnWorker(redisUrl: string, prefix: string, options: { backend?: string; concurrency?: number } = {}): WorkerProcess {
  const args = [HORIZON_BIN, 'worker', '--redis', redisUrl, '--prefix', prefix, '--concurrency', String(options.concurrency ?? 1)];
  if (options.backend) args.push('--backend', options.backend);
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  liveWorkers.add(child);
  child.once('exit', () => liveWorkers.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const worker of liveWorkers) worker.kill('SIGKILL');
    });
  }
  let out = '';
  let backend: string | undefined;
  let markReady!: () => void;
  let markFailed!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onData = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (/ ready \(concurrency/.test(out)) markReady();
    const match = /: backend (\S+) \(/.exec(out);
    if (match) backend = match[1];
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.once('exit', (code, signal) =>
    markFailed(new Error(`worker ${child.pid} exited (${signal ?? `code ${code}`}) before it was ready:\n${out.slice(-2000)}`)),
  );
  ready.catch(() => undefined);
  return {
    child,
    pid: child.pid as number,
    ready,
    backend: () => backend,
    output: () => out,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ─── Groups through the real queue ─────────────────────────────────────────────────────────────────

/** One iteration's groups sent through the queue and gathered from the results hash. */
export interface QueuedIteration {
  /** From just before `dispatchGroups` to the moment the last result was seen (ms). */
  readonly wallMs: number;
  /** The workers' results, by group index. */
  readonly results: GroupResult[];
  /** When each result appeared, ms after dispatch (sorted; resolution ≈ pollMs). */
  readonly arrivalsMs: number[];
}

/** What {@link runIterationThroughQueue} needs; the job record and weights must already exist. */
export interface QueuedIterationRequest extends Omit<IterationRequest, 'isCancelled' | 'log' | 'pollMs'> {
  /** How often the result count is polled (HLEN, cheap). Default 25 ms. */
  readonly pollMs?: number;
  /** Give up after this long. Default 30 minutes. */
  readonly timeoutMs?: number;
}

/**
 * Enqueue the groups exactly as the learner does (`dispatchGroups`) and wait until every group's result is
 * in the results hash. Polls the hash's length (not its contents) so waiting costs the workers next to no
 * CPU; reads and parses the results once at the end, then deletes the hash as `collectGroups` does.
 * A failed group job or a timeout throws with the reason.
 */
export async function runIterationThroughQueue(req: QueuedIterationRequest): Promise<QueuedIteration> {
  const keys = jobKeys(req.prefix, req.jobId);
  const resultsKey = keys.results(req.attempt, req.iteration);
  const pollMs = req.pollMs ?? 25;
  const started = performance.now();
  const timeoutMs = req.timeoutMs ?? 30 * 60_000;
  const deadline = started + timeoutMs;
  await dispatchGroups(req);
  const arrivalsMs: number[] = [];
  let seen = 0;
  let lastFailureCheck = started;
  while (seen < req.tasks.length) {
    const count = await req.redis.hlen(resultsKey);
    const now = performance.now();
    for (; seen < count; seen++) arrivalsMs.push(now - started);
    if (seen >= req.tasks.length) break;
    if (now - lastFailureCheck > 1000) {
      lastFailureCheck = now;
      const failed = await req.queue.getFailed(0, 0);
      const ours = failed.find((job) => job.id?.startsWith(`${req.jobId}.a${req.attempt}.i${req.iteration}.`));
      if (ours) throw new Error(`group job ${ours.id} failed: ${ours.failedReason}`);
    }
    if (now > deadline) throw new Error(`only ${seen} of ${req.tasks.length} groups finished within ${timeoutMs} ms`);
    await sleep(pollMs);
  }
  const wallMs = arrivalsMs[arrivalsMs.length - 1];
  const raw = await req.redis.hgetall(resultsKey);
  await req.redis.del(resultsKey, keys.progress(req.attempt, req.iteration));
  const results = Object.entries(raw)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([field, json]) => parsePayload(GroupResultSchema, JSON.parse(json), `result of group ${field}`));
  return { wallMs, results, arrivalsMs };
}

/** Episodes (trajectories) and generated tokens of a set of results. */
export function countWork(results: readonly GroupResult[]): { episodes: number; generatedTokens: number; groupWallMs: number } {
  return {
    episodes: results.reduce((a, r) => a + r.trajectories.length, 0),
    generatedTokens: results.reduce((a, r) => a + r.generatedTokens, 0),
    groupWallMs: results.reduce((a, r) => a + r.wallMs, 0),
  };
}

/** The BullMQ queue of rollout groups under `prefix`. */
export function rolloutQueue(redisUrl: string, prefix: string): Queue {
  return new Queue(QUEUES.rollouts, { connection: queueConnection(redisUrl), prefix });
}

/** The training split's task pool of the config's environment, as the learner samples it. */
export async function taskSampler(
  config: ResolvedConfig,
  seed = config.seed,
): Promise<{ sampler: TaskSampler; env: EnvDefinition; envOptions: unknown }> {
  const env = await loadEnvDefinition({ name: config.env.name, module: config.env.module }, config.derived.configDir);
  const envOptions = validateEnvOptions(env, config.env.options);
  const pool = env.taskCount(config.train.split, envOptions);
  return { sampler: new TaskSampler(config.train.split, pool, seed), env, envOptions };
}

// ─── /proc ─────────────────────────────────────────────────────────────────────────────────────────

let clockTicksPerSecond: number | undefined;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after the name.
  const ticks = Number(fields[11]) + Number(fields[12]);
  clockTicksPerSecond ??= readClockTicks();
  return ticks / clockTicksPerSecond;
}

function readClockTicks(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(value) && value > 0) return value;
  } catch {
    // getconf missing: Linux's USER_HZ is 100 on every common architecture.
  }
  return 100;
}

/** Resident set size now and its high-water mark, in MB, from /proc/<pid>/status; undefined once it has exited. */
export function processMemoryMb(pid: number): { rssMb: number; hwmMb: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  const rssMb = kb('VmRSS') / 1024;
  const hwmMb = kb('VmHWM') / 1024;
  // A process that has exited but not been reaped (a zombie) has a status file without memory lines.
  return Number.isNaN(rssMb) || Number.isNaN(hwmMb) ? undefined : { rssMb, hwmMb };
}

/** Child processes of `pid` (Linux: /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // The process ended while we looked.
  }
  return out;
}

/** The command line of a process, arguments joined by spaces ('' once it is gone). */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
