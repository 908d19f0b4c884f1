/**
 * Mem-α costs next to the policy's generation: the memory tools (calls/s), the built-in reader over a
 * 10K-entry memory (questions/s), and whole writer episodes split into generation / tools / reader.
 *
 * 1. Tools: a store filled to `--entries` entries, then `--calls` calls (inserts and deletes balanced,
 *    updates, duplicate inserts, invalid calls) as line-syntax responses of 4 calls: parse only, execute
 *    only, and both.
 * 2. Reader: `--entries` entries (half semantic facts, half episodic events, generated like the data),
 *    `--questions` fact questions: index build, then BM25 retrieval (top-20 per list + core) and the
 *    extractive answer per question; the share answered correctly is printed as a sanity check.
 * 4. Baselines (no policy): mean r1 per category on `--quality` eval and test-long tasks each, for the
 *    scripted writer (noise 0 and the recipe's demo noise), long-context and RAG-top-2, all with the built-in reader.
 * 3. Episodes: groups of `--group` rollouts of one task, as a worker runs them: per chunk one batched
 *    generate() call of the (untrained) policy, then each env.step() on the scripted writer's response of
 *    the same length (so the tools run realistic calls), then score() (reader, judge, reward). Generation
 *    is forced to the response's length (no stop token), so the split is generation vs tools vs reader
 *    for the same tokens. Model and env options are the proposed tiny CPU recipe unless overridden.
 *
 *   npx tsx bench/memalpha.ts [--calls 100000] [--entries 10000] [--questions 2000] [--groups 4]
 *                             [--group 8] [--long-groups 1] [--backend wasm] [--json out.json]
 */
import os from 'node:os';
import { ModelSchema } from '../configs/schema.js';
import { Rng, mixSeed } from '../core/rng.js';
import { RELATIONS } from '../envs/memalpha/data/relations.js';
import { Lexicon, OBJECTS, STORY_VERBS, pick } from '../envs/memalpha/data/lexicon.js';
import { MemalphaEnv, memalphaBaseline, memalphaOptionsSchema, memalphaTaskCount, type MemalphaOptions } from '../envs/memalpha/env.js';
import { heuristicResponse } from '../envs/memalpha/heuristic.js';
import { parseToolCalls } from '../envs/memalpha/parser.js';
import { MemoryRetriever, extractiveAnswer } from '../envs/memalpha/reader.js';
import { MemoryStore } from '../envs/memalpha/store.js';
import type { ToolCall } from '../envs/memalpha/types.js';
import type { TaskRef } from '../envs/types.js';
import { selectBackend, type BackendRequest } from '../models/backend.js';
import { generate } from '../models/sampler.js';
import { BOS_ID, BYTE_TOKENIZER_VOCAB_SIZE, ByteTokenizer } from '../models/tokenizer.js';
import { TransformerPolicy } from '../models/transformer.js';
import { substringMatch } from '../rewards/memalpha.js';
import { intFlag, machineInfo, machineLine, markdownTable, parseFlags, progress, writeJsonIfAsked } from './lib.js';

const USAGE = `npx tsx bench/memalpha.ts [flags]
  --calls N         tool calls measured (default 100000)
  --entries N       memory entries for the tool and reader measurements (default 10000)
  --questions N     reader questions (default 2000)
  --groups N        measured groups of training episodes, one category after another (default 4)
  --group K         rollouts per group, generated as one batch (default 8)
  --long-groups N   measured groups of test-long episodes (default 1)
  --quality N       tasks per category and split for the baseline table (default 40; 0 = skip)
  --backend NAME    tfjs backend for generation (default wasm)
  --json FILE       also write the measurements as JSON`;

/** The proposed tiny recipe: a byte-level policy and env options whose prompts fit its context. */
const MODEL = { dModel: 96, nLayers: 3, nHeads: 4, maxSeqLen: 576 } as const;
const ENV_OPTIONS = {
  prompt: { maxPromptTokens: 384, instructions: false },
  memory: { coreTokenCap: 96 },
  generator: {
    chunks: 3,
    longChunks: 30,
    maxChunkTokens: 128,
    factsPerChunk: 1,
    fillerPerChunk: 1,
    examplesPerChunk: 2,
    exampleWords: 3,
    questionsPerInstance: 3,
  },
} as const;

const tokenizer = new ByteTokenizer();

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, {
    calls: '100000',
    entries: '10000',
    questions: '2000',
    groups: '4',
    group: '8',
    'long-groups': '1',
    quality: '40',
    backend: 'wasm',
    json: '',
  });
  const calls = intFlag(flags.calls, 'calls');
  const entries = intFlag(flags.entries, 'entries', 2);
  const questions = intFlag(flags.questions, 'questions');
  const groups = intFlag(flags.groups, 'groups', 0);
  const groupSize = intFlag(flags.group, 'group');
  const longGroups = intFlag(flags['long-groups'], 'long-groups', 0);
  const qualityTasks = intFlag(flags.quality, 'quality', 0);
  const loadAtStart = os.loadavg()[0];

  progress(`tools: ${calls} calls on a ${entries}-entry store`);
  const tools = benchTools(calls, entries);
  progress(`reader: ${questions} questions over ${entries} entries`);
  const reader = benchReader(entries, questions);

  const options = memalphaOptionsSchema.parse(ENV_OPTIONS);
  progress(`baselines: ${qualityTasks} tasks per category and split`);
  const quality = qualityTasks > 0 ? await benchBaselines(options, qualityTasks) : [];
  const backend = await selectBackend(flags.backend as BackendRequest);
  const policy = new TransformerPolicy({ ...ModelSchema.parse(MODEL), vocabSize: BYTE_TOKENIZER_VOCAB_SIZE }, 1);
  const episodes: EpisodeRow[] = [];
  try {
    await runGroup(policy, options, { split: 'train', index: 0, seed: 9 }, 2); // warm-up: kernels, caches
    for (let g = 0; g < groups; g++) {
      progress(`episodes: group ${g + 1}/${groups} (${groupSize} rollouts)`);
      episodes.push(await runGroup(policy, options, { split: 'train', index: g, seed: 1 }, groupSize));
    }
    for (let g = 0; g < longGroups; g++) {
      progress(`episodes: test-long group ${g + 1}/${longGroups}`);
      episodes.push(await runGroup(policy, options, { split: 'test-long', index: g, seed: 1 }, groupSize));
    }
  } finally {
    policy.dispose();
  }
  report({ tools, reader, quality, episodes, groupSize, machine: machineLine(machineInfo(backend.name, loadAtStart)) });
  writeJsonIfAsked(flags.json || undefined, {
    tools,
    reader,
    quality,
    episodes,
    model: MODEL,
    envOptions: ENV_OPTIONS,
    backend: backend.name,
  });
}

// ─── 1. Tools ─────────────────────────────────────────────────────────────────────────────────────────

interface ToolsResult {
  readonly calls: number;
  readonly entries: number;
  readonly parseCallsPerSec: number;
  readonly executeCallsPerSec: number;
  readonly bothCallsPerSec: number;
  readonly failedShare: number;
}

function benchTools(calls: number, entries: number): ToolsResult {
  const rng = new Rng(7);
  const store = new MemoryStore();
  const live: { id: string; type: 'semantic_memory' | 'episodic_memory' }[] = [];
  for (let i = 0; i < entries; i++) {
    const type = i % 2 === 0 ? 'semantic_memory' : 'episodic_memory';
    const id = store.execute({ tool: 'new_memory_insert', memory_type: type, content: `Person ${i} lives in town ${i % 97}.` }).id!;
    live.push({ id, type });
  }
  // The call mix, drawn ahead; sequential ids are predictable (s<n>, e<n>), so updates and deletes can
  // name entries the measured calls themselves insert.
  const sequence = { semantic_memory: Math.ceil(entries / 2), episodic_memory: Math.floor(entries / 2) };
  const mix: ToolCall[] = [];
  for (let i = 0; i < calls; i++) {
    const r = rng.next();
    const type = rng.next() < 0.5 ? 'semantic_memory' : 'episodic_memory';
    if (r < 0.25) {
      mix.push({ tool: 'new_memory_insert', memory_type: type, content: `Day ${i}: person ${i} arrived in town ${i % 97}.` });
      live.push({ id: `${type === 'semantic_memory' ? 's' : 'e'}${++sequence[type]}`, type });
    } else if (r < 0.5 && live.length > 1) {
      const [victim] = live.splice(rng.int(live.length), 1);
      mix.push({ tool: 'memory_delete', memory_type: victim.type, memory_id: victim.id });
    } else if (r < 0.8) {
      const target = live[rng.int(live.length)];
      mix.push({
        tool: 'memory_update',
        memory_type: target.type,
        memory_id: target.id,
        new_content: `Person ${i} now lives in town ${i % 89}.`,
      });
    } else if (r < 0.9) {
      mix.push({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: 'Person 0 lives in town 0.' });
    } else {
      mix.push({ tool: 'memory_update', memory_type: 'semantic_memory', memory_id: 'missing', new_content: 'x y' });
    }
  }
  const responses: string[] = [];
  for (let i = 0; i < mix.length; i += 4)
    responses.push(
      mix
        .slice(i, i + 4)
        .map(formatLine)
        .join('\n'),
    );

  let t0 = performance.now();
  let parsedCount = 0;
  for (const response of responses) parsedCount += parseToolCalls(response).length;
  const parseMs = performance.now() - t0;

  const executeStore = cloneStore(store);
  t0 = performance.now();
  let failed = 0;
  for (const call of mix) if (!executeStore.execute(call).ok) failed++;
  const executeMs = performance.now() - t0;

  const bothStore = cloneStore(store);
  t0 = performance.now();
  for (const response of responses) for (const parsed of parseToolCalls(response)) if (parsed.ok) bothStore.execute(parsed.call);
  const bothMs = performance.now() - t0;
  if (parsedCount !== mix.length) throw new Error(`parsed ${parsedCount} calls, expected ${mix.length}`);
  return {
    calls,
    entries,
    parseCallsPerSec: calls / (parseMs / 1000),
    executeCallsPerSec: calls / (executeMs / 1000),
    bothCallsPerSec: calls / (bothMs / 1000),
    failedShare: failed / calls,
  };
}

function formatLine(call: ToolCall): string {
  const type = call.memory_type.replace('_memory', '');
  if (call.tool === 'new_memory_insert') return `insert ${type}: ${call.content}`;
  if (call.tool === 'memory_update') return `update ${type} ${call.memory_id}: ${call.new_content}`;
  return `delete ${type} ${call.memory_id}`;
}

/** A store with the same contents and ids (replay of its snapshot as sequential inserts). */
function cloneStore(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore();
  const snapshot = store.snapshot();
  const merged = [
    ...snapshot.semantic.map((e) => ({ ...e, type: 'semantic_memory' as const })),
    ...snapshot.episodic.map((e) => ({ ...e, type: 'episodic_memory' as const })),
  ];
  merged.sort((a, b) => a.written - b.written);
  for (const e of merged) copy.execute({ tool: 'new_memory_insert', memory_type: e.type, content: e.content });
  return copy;
}

// ─── 2. Reader ────────────────────────────────────────────────────────────────────────────────────────

interface ReaderResult {
  readonly entries: number;
  readonly questions: number;
  readonly indexBuildMs: number;
  readonly retrievalPerSec: number;
  readonly answerPerSec: number;
  readonly correctShare: number;
}

function benchReader(entries: number, questions: number): ReaderResult {
  const rng = new Rng(11);
  const lexicon = new Lexicon(rng);
  const store = new MemoryStore();
  const asked: { question: string; answer: string }[] = [];
  const people = Array.from({ length: Math.ceil(entries / 4) }, () => lexicon.person());
  const places = Array.from({ length: 200 }, () => lexicon.place());
  const used = new Set<string>();
  for (let i = 0; store.size('semantic_memory') < entries / 2; i++) {
    const subject = people[i % people.length];
    const relation = RELATIONS[Math.floor(i / people.length) % RELATIONS.length];
    if (used.has(`${subject}/${relation.name}`)) continue;
    used.add(`${subject}/${relation.name}`);
    const value = relation.value(rng, lexicon);
    store.execute({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: relation.fact(subject, value) });
    if (asked.length < questions * 4) asked.push({ question: relation.question(subject), answer: value });
  }
  for (let d = 1; store.size('episodic_memory') < entries / 2; d++) {
    store.execute({
      tool: 'new_memory_insert',
      memory_type: 'episodic_memory',
      content: `Day ${d}: ${pick(rng, people)} ${pick(rng, STORY_VERBS)} the ${pick(rng, OBJECTS)} in ${pick(rng, places)}.`,
    });
  }
  const memory = store.snapshot();
  const sample = rng.shuffle(asked).slice(0, questions);
  let t0 = performance.now();
  const retriever = new MemoryRetriever(memory, 20);
  const indexBuildMs = performance.now() - t0;
  // Warm-up (JIT) on other questions than the measured ones.
  for (const { question } of asked.slice(questions, questions + 200))
    extractiveAnswer({ question, metric: 'substring', source: 'bench' }, retriever.passages(question));
  t0 = performance.now();
  let passages = 0;
  for (const { question } of sample) passages += retriever.passages(question).length;
  const retrievalMs = performance.now() - t0;
  t0 = performance.now();
  let correct = 0;
  for (const { question, answer } of sample) {
    const prediction = extractiveAnswer({ question, metric: 'substring', source: 'bench' }, retriever.passages(question));
    correct += substringMatch(prediction, [answer]);
  }
  const answerMs = performance.now() - t0;
  if (passages === 0) throw new Error('retrieval returned nothing');
  return {
    entries: memory.semantic.length + memory.episodic.length,
    questions: sample.length,
    indexBuildMs,
    retrievalPerSec: sample.length / (retrievalMs / 1000),
    answerPerSec: sample.length / (answerMs / 1000),
    correctShare: correct / sample.length,
  };
}

// ─── 4. Baselines ─────────────────────────────────────────────────────────────────────────────────────

interface QualityRow {
  readonly split: string;
  readonly category: string;
  readonly tasks: number;
  /** Mean r1 per baseline column. */
  readonly r1: Record<string, number>;
}

const QUALITY_COLUMNS = ['scripted writer (noise 0)', 'scripted writer (demo noise)', 'long-context', 'rag-top-2'] as const;

async function benchBaselines(options: MemalphaOptions, tasksPerCategory: number): Promise<QualityRow[]> {
  const clean = memalphaOptionsSchema.parse({ ...ENV_OPTIONS, demo: { noise: 0 } });
  const rows: QualityRow[] = [];
  for (const split of ['eval', 'test-long']) {
    for (const [c, category] of options.categories.entries()) {
      const sums: Record<string, number> = Object.fromEntries(QUALITY_COLUMNS.map((k) => [k, 0]));
      let tasks = 0;
      for (let i = 0; i < tasksPerCategory; i++) {
        const index = c + i * options.categories.length;
        if (index >= memalphaTaskCount(split, options)) break;
        const ref = { split, index, seed: 1 };
        sums[QUALITY_COLUMNS[0]] += (await memalphaBaseline(ref, clean, 'heuristic')).r1;
        sums[QUALITY_COLUMNS[1]] += (await memalphaBaseline(ref, options, 'heuristic')).r1;
        sums[QUALITY_COLUMNS[2]] += (await memalphaBaseline(ref, options, 'long-context')).r1;
        sums[QUALITY_COLUMNS[3]] += (await memalphaBaseline(ref, options, 'rag-top-k')).r1;
        tasks++;
      }
      rows.push({ split, category, tasks, r1: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(1, tasks)])) });
    }
  }
  return rows;
}

// ─── 3. Episodes ──────────────────────────────────────────────────────────────────────────────────────

interface EpisodeRow {
  readonly split: string;
  readonly category: string;
  readonly rollouts: number;
  readonly chunks: number;
  readonly generatedTokens: number;
  readonly meanPromptTokens: number;
  readonly generationMs: number;
  readonly toolsMs: number;
  readonly readerMs: number;
  readonly meanR1: number;
}

/** One group: K episodes of `task`, one batched generation per chunk, as a worker runs them. */
async function runGroup(policy: TransformerPolicy, options: MemalphaOptions, task: TaskRef, rollouts: number): Promise<EpisodeRow> {
  const envs = Array.from({ length: rollouts }, () => new MemalphaEnv(options));
  const prompts = envs.map((env) => env.reset(task));
  const writerRngs = envs.map((_, k) => new Rng(mixSeed(task.index, k, 0x77)));
  const sampleRngs = envs.map((_, k) => new Rng(mixSeed(task.index, k, 0x55)));
  const instance = envs[0].writerEpisode().instance;
  let generationMs = 0;
  let toolsMs = 0;
  let generatedTokens = 0;
  let promptTokens = 0;
  for (let chunk = 0; chunk < instance.chunks.length; chunk++) {
    const responses = envs.map((env, k) => {
      const prompt = env.writerEpisode().currentPrompt();
      return heuristicResponse(prompt.view, prompt.chunk, writerRngs[k], options.demo.noise, options.prompt.callSyntax);
    });
    const requests = envs.map((_, k) => ({
      context: [BOS_ID, ...tokenizer.encode(prompts[k])],
      maxNewTokens: Math.max(1, tokenizer.encode(responses[k]).length),
      rng: sampleRngs[k],
    }));
    promptTokens += requests.reduce((a, r) => a + r.context.length, 0);
    let t0 = performance.now();
    const generated = await generate(policy, requests, { temperature: 1, stopTokens: [] });
    generationMs += performance.now() - t0;
    generatedTokens += generated.reduce((a, g) => a + g.tokens.length, 0);
    t0 = performance.now();
    envs.forEach((env, k) => {
      prompts[k] = env.step(responses[k]).observation;
    });
    toolsMs += performance.now() - t0;
  }
  const t0 = performance.now();
  const rewards = await Promise.all(envs.map((env) => env.score()));
  const readerMs = performance.now() - t0;
  return {
    split: task.split,
    category: instance.category ?? instance.source,
    rollouts,
    chunks: instance.chunks.length,
    generatedTokens,
    meanPromptTokens: promptTokens / (rollouts * instance.chunks.length),
    generationMs,
    toolsMs,
    readerMs,
    meanR1: rewards.reduce((a, r) => a + r.parts.r1, 0) / rewards.length,
  };
}

// ─── Report ───────────────────────────────────────────────────────────────────────────────────────────

function report(result: {
  tools: ToolsResult;
  reader: ReaderResult;
  quality: QualityRow[];
  episodes: EpisodeRow[];
  groupSize: number;
  machine: string;
}): void {
  const { tools, reader, quality, episodes } = result;
  const out: string[] = [];
  out.push('## Mem-α: memory tools, reader, episodes', '', result.machine, '');
  out.push(
    `### Memory tools (${tools.calls.toLocaleString('en-US')} calls on a ${tools.entries.toLocaleString('en-US')}-entry store; ${(100 * tools.failedShare).toFixed(0)} % of them fail)`,
    '',
  );
  out.push(
    markdownTable(
      ['stage', 'calls/s'],
      [
        ['parse (line syntax, 4 calls per response)', Math.round(tools.parseCallsPerSec)],
        ['execute', Math.round(tools.executeCallsPerSec)],
        ['parse + execute', Math.round(tools.bothCallsPerSec)],
      ],
    ),
    '',
  );
  out.push(`### Built-in reader over ${reader.entries.toLocaleString('en-US')} entries (${reader.questions} questions)`, '');
  out.push(
    markdownTable(
      ['stage', 'value'],
      [
        ['BM25 index build (both lists)', `${reader.indexBuildMs.toFixed(0)} ms`],
        ['retrieval (top-20 per list + core), questions/s', Math.round(reader.retrievalPerSec)],
        ['retrieval + extractive answer, questions/s', Math.round(reader.answerPerSec)],
        ['answered correctly', `${(100 * reader.correctShare).toFixed(1)} %`],
      ],
    ),
    '',
  );
  if (quality.length > 0) {
    out.push(`### Baselines: mean r1 (built-in reader; long-context sees the last 2048 tokens)`, '');
    out.push(
      markdownTable(
        ['split', 'category', 'tasks', ...QUALITY_COLUMNS],
        quality.map((q) => [q.split, q.category, q.tasks, ...QUALITY_COLUMNS.map((k) => q.r1[k].toFixed(2))]),
      ),
      '',
    );
  }
  out.push(
    `### Writer episodes (groups of ${result.groupSize}, batched generation; policy ${MODEL.dModel}×${MODEL.nLayers} layers, maxSeqLen ${MODEL.maxSeqLen}; tools = env.step, reader = env.score)`,
    '',
  );
  const rows = episodes.map((e) => [
    e.split,
    e.category,
    e.chunks,
    Math.round(e.meanPromptTokens),
    e.generatedTokens,
    Math.round(e.generationMs),
    e.toolsMs,
    e.readerMs,
    `${((100 * (e.toolsMs + e.readerMs)) / e.generationMs).toFixed(2)} %`,
    e.meanR1,
  ]);
  const sum = (f: (e: EpisodeRow) => number) => episodes.reduce((a, e) => a + f(e), 0);
  if (episodes.length > 0) {
    rows.push([
      'all',
      '',
      sum((e) => e.chunks),
      '',
      sum((e) => e.generatedTokens),
      Math.round(sum((e) => e.generationMs)),
      sum((e) => e.toolsMs),
      sum((e) => e.readerMs),
      `${((100 * (sum((e) => e.toolsMs) + sum((e) => e.readerMs))) / sum((e) => e.generationMs)).toFixed(2)} %`,
      '',
    ]);
  }
  out.push(
    markdownTable(
      [
        'split',
        'category',
        'chunks',
        'prompt tokens',
        'generated tokens',
        'generation ms',
        'tools ms',
        'reader ms',
        '(tools + reader) / generation',
        'mean r1',
      ],
      rows,
    ),
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench/memalpha: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
