import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, EnvError } from '../../../core/errors.js';
import { validateEnvOptions } from '../../../envs/loader.js';
import {
  MEMALPHA_BASELINES,
  MemalphaEnv,
  memalphaBaseline,
  memalphaDemonstration,
  memalphaDemonstrationTurns,
  memalphaEnv,
  memalphaEpisodeOptions,
  memalphaInstance,
  memalphaOptionsSchema,
  memalphaServices,
  memalphaTaskCount,
  type MemalphaOptions,
} from '../../../envs/memalpha/env.js';
import { replayCalls } from '../../../envs/memalpha/store.js';
import { countTokens } from '../../../envs/memalpha/tokens.js';
import { getBuiltinEnv } from '../../../envs/registry.js';
import type { TaskRef } from '../../../envs/types.js';
import { REPO } from '../../helpers/services.js';
import { startFakeOpenAi, type FakeOpenAi } from './fake-openai.js';

const defaults = memalphaOptionsSchema.parse({});
const task = (index: number, split = 'train'): TaskRef => ({ split, index, seed: 11 });

async function playDemonstration(options: MemalphaOptions, ref: TaskRef) {
  const env = new MemalphaEnv(options);
  let observation = env.reset(ref);
  const turns = memalphaDemonstrationTurns(ref, options);
  for (const turn of turns) {
    expect(observation).toBe(turn.prompt);
    observation = env.step(turn.response).observation;
  }
  return { env, turns, detail: await env.scoreDetail() };
}

describe('memalpha definition and options', () => {
  it('is the built-in `memalpha` with the contract’s methods', () => {
    expect(getBuiltinEnv('memalpha')).toBe(memalphaEnv);
    expect(validateEnvOptions(memalphaEnv, {})).toEqual(defaults);
    expect(defaults.reward).toEqual({ beta: 0.05, gamma: 0.1, scoreDeletes: false, total: 'r1' });
    expect(defaults.reader).toMatchObject({ kind: 'bm25', topK: 20 });
    expect(defaults.memory).toEqual({ coreTokenCap: 512, idScheme: 'sequential' });
    expect(defaults.prompt.viewEntries).toBe(5);
  });

  it('refuses inconsistent options with the path and the reason', () => {
    expect(() => validateEnvOptions(memalphaEnv, { generator: { chunks: 8, longChunks: 40 } })).toThrow(
      /generator\.longChunks must be at least 10 × generator\.chunks/,
    );
    expect(() => validateEnvOptions(memalphaEnv, { reader: { kind: 'llm' } })).toThrow(/reader\.kind llm needs reader\.endpoint/);
    expect(() => validateEnvOptions(memalphaEnv, { memory: { coreTokenCap: 512 }, prompt: { maxPromptTokens: 600 } })).toThrow(
      /maxPromptTokens must exceed memory\.coreTokenCap/,
    );
    expect(() => validateEnvOptions(memalphaEnv, { categories: ['qa'] })).toThrow(ConfigError);
    expect(() => validateEnvOptions(memalphaEnv, { rewards: {} })).toThrow(/rewards/);
  });

  it('has train / eval / test / test-long splits; test-long instances are 10× longer', () => {
    expect(['train', 'eval', 'test', 'test-long', 'other'].map((s) => memalphaTaskCount(s, defaults))).toEqual([100_000, 256, 256, 64, 0]);
    expect(memalphaInstance(task(0), defaults).chunks).toHaveLength(4);
    expect(memalphaInstance(task(0, 'test-long'), defaults).chunks).toHaveLength(40);
    expect(memalphaInstance(task(0, 'eval'), defaults)).not.toEqual(memalphaInstance(task(0, 'test'), defaults));
    expect(memalphaInstance(task(5), defaults)).toEqual(memalphaInstance(task(5), defaults));
    expect([0, 1, 2, 3, 4].map((i) => memalphaInstance(task(i), defaults).category)).toEqual(['ar', 'ttl', 'lru', 'cr', 'ar']);
    expect(() => memalphaInstance(task(300, 'eval'), defaults)).toThrow(/outside split 'eval' \(0\.\.255\)/);
    expect(() => memalphaInstance(task(0, 'dev'), defaults)).toThrow(/no tasks in split 'dev'/);
  });

  it('accepts every env section shown in docs/memalpha.md', () => {
    const markdown = readFileSync(path.join(REPO, 'docs/memalpha.md'), 'utf8');
    const blocks = [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
      (m) => parseYaml(m[1]) as { env: { name: string; options: unknown } },
    );
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) {
      expect(block.env.name).toBe('memalpha');
      expect(() => validateEnvOptions(memalphaEnv, block.env.options)).not.toThrow();
    }
  });

  it('reads a split from a Mem-α file instead of generating it', () => {
    const options = memalphaOptionsSchema.parse({ data: { test: path.join(REPO, 'examples/data/memalpha-sample.jsonl') } });
    expect(memalphaTaskCount('test', options)).toBe(4);
    expect(memalphaTaskCount('train', options)).toBe(100_000);
    expect(memalphaInstance(task(2, 'test'), options).source).toBe('booksum');
  });
});

describe('an episode', () => {
  it('replays the demonstration: same prompts, one turn reward per chunk, r1 as total, parts per spec', async () => {
    const { env, turns, detail } = await playDemonstration(defaults, task(0));
    const reward = detail.reward;
    expect(turns).toHaveLength(4);
    expect(reward.turnRewards).toHaveLength(4);
    expect(reward.total).toBe(reward.parts.r1);
    expect(reward.parts['qa/synthetic/ar']).toBe(reward.parts.r1);
    const episode = env.writerEpisode();
    expect(reward.parts.input_tokens).toBe(memalphaInstance(task(0), defaults).chunks.reduce((a, c) => a + countTokens(c), 0));
    expect(reward.parts.r3).toBe(1 - reward.parts.memory_tokens / reward.parts.input_tokens);
    expect(detail.questions).toHaveLength(4);
    // Invariant 4: every chunk sample carries the same r1 + β·r3.
    const shared = episode.records().map((record, t) => {
      const calls = record.calls;
      const ok = calls.filter((c) => c.parsed.ok && c.result.ok && !c.result.skipped).length;
      const r2 = calls.length === 0 ? 0 : ok / calls.length;
      const written = calls.filter((c) => c.written !== undefined).length;
      const r4 = calls.length === 0 ? 0 : written / calls.length; // rule judge accepts the scripted writer's content
      return reward.turnRewards![t] - r2 - 0.1 * r4;
    });
    for (const value of shared) expect(value).toBeCloseTo(reward.parts.r1 + 0.05 * reward.parts.r3, 9);
  });

  it('ends with an empty observation and done after the last chunk; misuse is an EnvError', async () => {
    const env = new MemalphaEnv(defaults);
    expect(() => env.step('x')).toThrow(EnvError);
    env.reset(task(1));
    for (let t = 0; t < 3; t++) expect(env.step('').done).toBe(false);
    expect(env.step('')).toEqual({ observation: '', done: true });
    expect(() => env.step('')).toThrow(/after the last chunk/);
    const reward = await env.score();
    expect(reward.parts).toMatchObject({ r2_mean: 0, r4_mean: 0, calls: 0, memory_tokens: 0, r3: 1 });
    expect(await env.score()).toBe(reward);
  });

  it('scores an episode cut short on the chunks it read', async () => {
    const env = new MemalphaEnv(defaults);
    env.reset(task(0));
    env.step('insert semantic: Something was said.');
    const reward = await env.score();
    expect(reward.turnRewards).toHaveLength(1);
    expect(reward.parts.input_tokens).toBe(countTokens(memalphaInstance(task(0), defaults).chunks[0]));
  });

  it('counts a skipped duplicate and a failed call against r2 and r4 of their chunk only (invariant 2)', async () => {
    const env = new MemalphaEnv(defaults);
    env.reset(task(0));
    env.step('insert semantic: Mira Kolt lives in Tavon.\ninsert semantic: Mira Kolt lives in Tavon.');
    env.step('insert core: no\ninsert episodic: Day 2: Mira Kolt left.');
    env.step('delete semantic s1');
    env.step('update semantic s9: x y');
    const detail = await env.scoreDetail();
    const { r1, r3 } = detail.reward.parts;
    const base = r1 + 0.05 * r3;
    // chunk 1: [write(1), skipped] → r2 = r4 = 1/2; chunk 2: [failed, write(1)] → 1/2, 1/2;
    // chunk 3: [delete] → r2 = 1, r4 = 0; chunk 4: [failed] → 0, 0.
    expect(detail.reward.turnRewards).toEqual([base + 0.5 + 0.05, base + 0.5 + 0.05, base + 1, base].map((x) => expect.closeTo(x, 12)));
    expect(detail.reward.parts).toMatchObject({ calls: 6, failed_calls: 2, skipped_calls: 1, semantic_entries: 0, episodic_entries: 1 });
  });

  it('never throws on malformed output: it becomes failed calls with r2 = 0 (invariant 9)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.constant('{"tool":'), fc.constant('delete semantic s1: x')), {
          minLength: 4,
          maxLength: 4,
        }),
        async (responses) => {
          const env = new MemalphaEnv(defaults);
          env.reset(task(2));
          for (const response of responses) env.step(response);
          const reward = await env.score();
          expect(reward.turnRewards).toHaveLength(4);
          for (const r of reward.turnRewards!) expect(Number.isFinite(r)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
    const env = new MemalphaEnv(defaults);
    env.reset(task(2));
    for (let t = 0; t < 4; t++) env.step('this is not a call\n{"tool": "memory_update"');
    const reward = await env.score();
    expect(reward.parts).toMatchObject({ r2_mean: 0, r4_mean: 0, calls: 8, failed_calls: 8 });
  });

  it('replaying the logged calls on an empty memory reproduces the final memory, random ids included (invariant 8)', async () => {
    const options = memalphaOptionsSchema.parse({ memory: { idScheme: 'random' }, demo: { noise: 0.3 } });
    for (let i = 0; i < 8; i++) {
      const { env } = await playDemonstration(options, task(i));
      const episode = env.writerEpisode();
      expect(replayCalls(episode.loggedCalls(), memalphaEpisodeOptions(task(i), options).memory).snapshot()).toEqual(episode.memory());
    }
  });

  it('uses an LLM reader and judge from the options against a fake endpoint', async () => {
    const server: FakeOpenAi = await startFakeOpenAi();
    try {
      server.handle((body) => {
        const system = String(body.messages[0].content);
        if (system.includes('VALID or INVALID')) return { content: 'VALID' };
        if (system.includes('CORRECT or WRONG')) return { content: 'CORRECT' };
        return { content: 'no idea' };
      });
      const endpoint = { baseUrl: server.baseUrl, model: 'm', retries: 0 };
      const options = memalphaOptionsSchema.parse({ reader: { kind: 'llm', endpoint }, judge: { kind: 'llm', endpoint } });
      const services = memalphaServices(options);
      expect([services.reader.name, services.contentJudge.name, services.answerJudge?.name]).toEqual(['llm', 'llm', 'llm']);
      const env = new MemalphaEnv(options);
      env.reset(task(0));
      for (let t = 0; t < 4; t++) env.step(`insert semantic: Fact number ${t}.`);
      const reward = await env.score();
      // The reader says "no idea" (r1 = 0); the judge accepts every write (r4 = 1).
      expect(reward.parts).toMatchObject({ r1: 0, r2_mean: 1, r4_mean: 1 });
      const readerRequests = server.requests.filter((r) => String(r.body.messages[0].content).startsWith('You answer questions'));
      expect(readerRequests).toHaveLength(4);
    } finally {
      await server.close();
    }
  });
});

describe('baselines of an evaluation', () => {
  it('score a task with the env’s reader: the scripted writer matches its demonstration, raw readers miss resolved conflicts', async () => {
    expect(MEMALPHA_BASELINES).toEqual(['long-context', 'rag-top-k', 'heuristic']);
    expect(defaults.baselines).toEqual({ contextTokens: 2048, ragTopK: 2 });
    let heuristicTotal = 0;
    let longContextTotal = 0;
    for (const index of [3, 7, 11, 15]) {
      const heuristic = await memalphaBaseline(task(index), defaults, 'heuristic');
      const { detail } = await playDemonstration(defaults, task(index));
      expect(heuristic.r1).toBe(detail.reward.parts.r1);
      expect(heuristic.questions.map((q) => q.prediction)).toEqual(detail.questions.map((q) => q.prediction));
      heuristicTotal += heuristic.r1;
      const longContext = await memalphaBaseline(task(index), defaults, 'long-context');
      const rag = await memalphaBaseline(task(index), defaults, 'rag-top-k');
      for (const r of [longContext.r1, rag.r1]) expect(r >= 0 && r <= 1).toBe(true);
      longContextTotal += longContext.r1;
    }
    // Conflict-resolution questions favour changes: the raw text keeps the stale fact next to the change.
    expect(longContextTotal).toBeLessThan(heuristicTotal);
  });
});

describe('demonstrations', () => {
  it('alternate env prompts and policy responses; the scripted writer uses the line syntax by default', () => {
    const demo = memalphaDemonstration(task(3), defaults);
    expect(demo.turns.map((t) => t.role)).toEqual(['env', 'policy', 'env', 'policy', 'env', 'policy', 'env', 'policy']);
    for (const turn of demo.turns.filter((t) => t.role === 'policy')) {
      for (const line of turn.text.split('\n').filter((l) => l.length > 0))
        expect(line).toMatch(/^(insert|update|delete) (core|semantic|episodic)/);
    }
  });

  it('without noise the scripted writer answers retrieval and conflict questions perfectly; noise costs reward', async () => {
    const clean = memalphaOptionsSchema.parse({ demo: { noise: 0 } });
    const noisy = memalphaOptionsSchema.parse({ demo: { noise: 0.5 } });
    const mean = async (options: MemalphaOptions, indices: number[]) => {
      let sum = 0;
      for (const i of indices) sum += (await playDemonstration(options, task(i))).detail.reward.parts.r1;
      return sum / indices.length;
    };
    const ar = [0, 4, 8, 12, 16, 20];
    const cr = [3, 7, 11, 15, 19, 23];
    expect(await mean(clean, ar)).toBe(1);
    expect(await mean(clean, cr)).toBe(1);
    expect(await mean(clean, [1, 5, 9, 13, 17, 21])).toBeGreaterThan(0.6);
    expect(await mean(clean, [2, 6, 10, 14, 18, 22])).toBeGreaterThan(0.9);
    expect(await mean(noisy, [...ar, ...cr])).toBeLessThan(0.9);
  });

  it('prompts fit the budget on test-long instances, and the view keeps showing at most 5 entries per list', () => {
    const options = memalphaOptionsSchema.parse({ prompt: { maxPromptTokens: 640, instructions: false }, memory: { coreTokenCap: 160 } });
    for (const index of [0, 1, 2, 3]) {
      const turns = memalphaDemonstrationTurns(task(index, 'test-long'), options);
      expect(turns).toHaveLength(40);
      for (const turn of turns) {
        expect(countTokens(turn.prompt)).toBeLessThanOrEqual(640);
        expect(turn.prompt.split('\n').filter((l) => /^[se]\d+: /.test(l)).length).toBeLessThanOrEqual(10);
      }
    }
  });
});
