/**
 * Delethink vs LongCoT generation cost against thinking length (docs/delethink.md, "Benchmark"): the
 * same TransformerPolicy thinks for 1×, 2×, 4× and 8× the chunk size C, once as one LongCoT chunk of the
 * whole length and once as Delethink chunks (C, then C − m with m = C/2 by default, so I = 2k − 1 chunks
 * for k·C tokens). Both run through `traceBatch`, batched over `--batch` traces, with the real sampler.
 *
 * Random weights would sample EOT now and then and end a trace early, so generation is forced to the
 * budget: the sampler gets no stop token and the tracer a stop id (−1) that never occurs. Every row
 * therefore generates exactly batch × k·C tokens; the text is meaningless, the cost is the real one.
 *
 * Reported per (method, length), each measured in its own child process so the peak RSS belongs to it:
 *   - generation wall time and ms per generated token (per sequence token: wall / (batch·length)), and the
 *     marginal ms/token of the tokens added since the previous length (the cost of *late* tokens);
 *   - peak tensor memory (the engine's live tensor bytes, weights included, at its highest during
 *     generation), the KV cache of the longest context a chunk reaches (2 · layers · kvHeads · headDim ·
 *     context · 4 bytes · batch), and the process's peak resident set (VmHWM; on wasm the heap only
 *     grows, so it holds the high-water mark).
 * Expected: LongCoT's ms/token and memory grow with the length; Delethink's stay flat (its chunks never
 * exceed |q| + h + C).
 *
 *   npx tsx bench/delethink-scaling.ts [--backend wasm] [--chunk 256] [--carry 128] [--head 0]
 *        [--multiples 1,2,4,8] [--batch 2] [--query 32] [--d-model 64] [--layers 2] [--heads 4] [--json out.json]
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng.js';
import { selectBackend, type BackendRequest } from '../models/backend.js';
import { generate } from '../models/sampler.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import {
  longCotTracing,
  maxChunkContext,
  thinkingBudget,
  traceBatch,
  type ChunkGenerator,
  type DelethinkTracing,
} from '../rollout/delethink.js';
import { intFlag, machineInfo, machineLine, markdownTable, parseFlags, processMemoryMb, progress, writeJsonIfAsked } from './lib.js';

const USAGE = `npx tsx bench/delethink-scaling.ts [flags]
  --backend NAME     tfjs backend (default wasm)
  --chunk C          Delethink chunk size C (default 256)
  --carry M          carryover m (default C/2)
  --head H           head tokens h (default 0)
  --multiples LIST   thinking lengths as multiples of C (default 1,2,4,8)
  --batch K          traces generated together (default 2)
  --query N          query tokens (default 32)
  --d-model D        model width (default 64)
  --layers L         transformer blocks (default 2)
  --heads H          attention heads (default 4)
  --json FILE        also write the measurements as JSON`;

/** Settings shared by the parent and every child measurement. */
interface Settings {
  readonly backend: string;
  readonly chunk: number;
  readonly carry: number;
  readonly head: number;
  readonly batch: number;
  readonly query: number;
  readonly dModel: number;
  readonly layers: number;
  readonly heads: number;
  /** Longest thinking length measured: the model's maxSeqLen covers LongCoT at it, so both methods use one model. */
  readonly maxLength: number;
}

/** One measurement, as a child reports it. */
interface Measurement {
  readonly method: 'delethink' | 'longcot';
  readonly multiple: number;
  readonly thinkingTokens: number;
  readonly chunks: number;
  /** Longest context (prompt + new tokens) any chunk needs. */
  readonly maxContext: number;
  readonly generatedTokens: number;
  readonly wallSec: number;
  readonly msPerToken: number;
  readonly peakTensorMb: number;
  readonly kvCacheMb: number;
  readonly rssPeakMb: number;
  readonly paramCount: number;
}

async function main(): Promise<void> {
  const childArg = process.argv.indexOf('--child');
  if (childArg >= 0) {
    const { settings, method, multiple } = JSON.parse(process.argv[childArg + 1]) as {
      settings: Settings;
      method: Measurement['method'];
      multiple: number;
    };
    const result = await measure(settings, method, multiple);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  const flags = parseFlags(USAGE, {
    backend: 'wasm',
    chunk: '256',
    carry: '',
    head: '0',
    multiples: '1,2,4,8',
    batch: '2',
    query: '32',
    'd-model': '64',
    layers: '2',
    heads: '4',
    json: '',
  });
  const chunk = intFlag(flags.chunk, 'chunk', 2);
  const multiples = flags.multiples.split(',').map((m) => intFlag(m.trim(), 'multiples'));
  const settings: Settings = {
    backend: flags.backend,
    chunk,
    carry: flags.carry === '' ? Math.floor(chunk / 2) : intFlag(flags.carry, 'carry', 0),
    head: intFlag(flags.head, 'head', 0),
    batch: intFlag(flags.batch, 'batch'),
    query: intFlag(flags.query, 'query'),
    dModel: intFlag(flags['d-model'], 'd-model', 8),
    layers: intFlag(flags.layers, 'layers'),
    heads: intFlag(flags.heads, 'heads'),
    maxLength: Math.max(...multiples) * chunk,
  };
  const loadAtStart = os.loadavg()[0];
  const rows: Measurement[] = [];
  for (const multiple of multiples) {
    for (const method of ['longcot', 'delethink'] as const) {
      progress(`${method} at ${multiple}×C = ${multiple * chunk} tokens`);
      rows.push(await runChild(settings, method, multiple));
    }
  }
  report(rows, settings, machineLine(machineInfo(settings.backend, loadAtStart)), flags.json || undefined);
}

/** The Delethink tracing for a thinking length of `multiple`·C (m = carry, I from the budget). */
function tracingFor(settings: Settings, method: Measurement['method'], multiple: number): DelethinkTracing {
  const length = multiple * settings.chunk;
  if (method === 'longcot') return longCotTracing(length);
  const later = settings.chunk - settings.carry;
  const maxChunks = 1 + Math.ceil((length - settings.chunk) / later);
  return { chunkTokens: settings.chunk, carryoverTokens: settings.carry, headTokens: settings.head, maxChunks, carry: 'paper' };
}

/** Run one measurement in this process (the child side). */
async function measure(settings: Settings, method: Measurement['method'], multiple: number): Promise<Measurement> {
  await selectBackend(settings.backend as BackendRequest);
  const config = resolvePolicyConfig({
    vocabSize: BYTE_TOKENIZER_VOCAB_SIZE,
    dModel: settings.dModel,
    nLayers: settings.layers,
    nHeads: settings.heads,
    maxSeqLen: settings.query + settings.maxLength + settings.head,
    ropeTheta: 10000,
    normEps: 1e-5,
    qkvBias: false,
    initStd: 0.02,
  });
  const policy = new TransformerPolicy(config, 1);
  const tracing = tracingFor(settings, method, multiple);
  const queryRng = new Rng(7);
  const queries = Array.from({ length: settings.batch }, () => Array.from({ length: settings.query }, () => queryRng.int(256)));
  const run = async (seed: number) => {
    const rngs = queries.map((_, k) => new Rng(seed * 100 + k));
    // No stop token: generation runs to every chunk's budget (see the module comment).
    const generator: ChunkGenerator = async (requests) =>
      (
        await generate(
          policy,
          requests.map((r) => ({ context: r.context, maxNewTokens: r.maxNewTokens, rng: rngs[r.trace] })),
          { temperature: 1, stopTokens: [] },
        )
      ).map((r) => ({ tokens: r.tokens, logProbs: r.logProbs, stopped: false }));
    return traceBatch(generator, queries, tracing, -1);
  };
  // Warm-up: kernels compiled, wasm heap grown for the first shapes.
  await generate(policy, [{ context: queries[0], maxNewTokens: 4, rng: new Rng(1) }], { temperature: 1, stopTokens: [] });

  const tensorBytes = trackTensorBytes();
  const started = performance.now();
  const traces = await run(1);
  const wallSec = (performance.now() - started) / 1000;
  const peakTensorBytes = tensorBytes.stop();
  const generatedTokens = traces.reduce((n, t) => n + t.thinkingTokens, 0);
  const maxContext = maxChunkContext(settings.query, tracing);
  const kvBytes = 2 * config.nLayers * config.nKvHeads * config.headDim * maxContext * 4 * settings.batch;
  const memory = processMemoryMb(process.pid);
  policy.dispose();
  return {
    method,
    multiple,
    thinkingTokens: thinkingBudget(tracing),
    chunks: traces[0].chunks.length,
    maxContext,
    generatedTokens,
    wallSec,
    msPerToken: (1000 * wallSec) / generatedTokens,
    peakTensorMb: peakTensorBytes / 2 ** 20,
    kvCacheMb: kvBytes / 2 ** 20,
    rssPeakMb: memory?.hwmMb ?? Number.NaN,
    paramCount: policy.paramCount,
  };
}

/**
 * Peak of the engine's live tensor bytes (`tf.memory().numBytes`) from now until `stop()`, at every
 * allocation. `tf.profile` cannot do this here (it keeps a record per kernel and fails on ~10⁵ of them), and
 * the sampler never yields to a timer, so the bench watches the engine's counter itself: a setter on
 * `engine.state.numBytes` (a public field of tfjs-core's EngineState) that keeps the maximum. Costs a
 * comparison per allocation.
 */
function trackTensorBytes(): { stop: () => number } {
  const state = (tf.engine() as unknown as { state: { numBytes: number } }).state;
  if (typeof state?.numBytes !== 'number') throw new Error('this tfjs version has no engine.state.numBytes to watch');
  let current = state.numBytes;
  let peak = current;
  Object.defineProperty(state, 'numBytes', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (value: number) => {
      current = value;
      if (value > peak) peak = value;
    },
  });
  return {
    stop: () => {
      Object.defineProperty(state, 'numBytes', { configurable: true, enumerable: true, writable: true, value: current });
      return peak;
    },
  };
}

/** Measure one (method, length) in a fresh child process; resolves with its result line. */
function runChild(settings: Settings, method: Measurement['method'], multiple: number): Promise<Measurement> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, script, '--child', JSON.stringify({ settings, method, multiple })], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice('RESULT '.length)) as Measurement);
      else reject(new Error(`measurement ${method} ×${multiple} exited with ${code}:\n${err || out}`));
    });
  });
}

function report(rows: readonly Measurement[], settings: Settings, machine: string, json: string | undefined): void {
  const marginal = (row: Measurement): string => {
    const previous = rows.filter((r) => r.method === row.method && r.multiple < row.multiple).sort((a, b) => b.multiple - a.multiple)[0];
    if (!previous) return '–';
    const seconds = row.wallSec - previous.wallSec;
    const tokens = row.generatedTokens - previous.generatedTokens;
    return ((1000 * seconds) / tokens).toFixed(3);
  };
  const ordered = [...rows].sort((a, b) => (a.method === b.method ? a.multiple - b.multiple : a.method < b.method ? -1 : 1));
  const lines = [
    `## Delethink vs LongCoT: generation cost against thinking length (C = ${settings.chunk}, m = ${settings.carry}, h = ${settings.head})`,
    '',
    machine,
    `model: ${rows[0]?.paramCount.toLocaleString('en-US')} parameters (dModel ${settings.dModel}, ${settings.layers} layers, ${settings.heads} heads), random weights; batch ${settings.batch} traces, query ${settings.query} tokens; generation forced to the budget (no stop token).`,
    '',
    markdownTable(
      [
        'method',
        'thinking tokens',
        'chunks',
        'max context',
        'gen. s',
        'ms/token',
        'marginal ms/token',
        'peak tensors MB',
        'KV cache MB',
        'peak RSS MB',
      ],
      ordered.map((r) => [
        r.method,
        r.thinkingTokens,
        r.chunks,
        r.maxContext,
        r.wallSec,
        r.msPerToken.toFixed(3),
        marginal(r),
        r.peakTensorMb,
        r.kvCacheMb,
        r.rssPeakMb,
      ]),
    ),
    '',
    '"ms/token": generation wall time per generated token of one trace (wall / (batch · length)); "marginal": the same for the tokens added since the previous length.',
    '"peak tensors": most live tensor bytes during generation (weights included); "KV cache": keys and values of the longest chunk context for the whole batch; "peak RSS": VmHWM of the measuring process.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonIfAsked(json, { benchmark: 'delethink-scaling', settings, machine, rows });
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench/delethink-scaling: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
