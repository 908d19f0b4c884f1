/**
 * The built-in reasoning tasks (envs/reasoning/): scripted solver traces verified by the verifier, state
 * carried across chunk boundaries, imperfect demonstrations with noise, disjoint splits, the one-turn
 * episode contract, and the JSONL loader with errors that name the line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, EnvError } from '../../../core/errors.js';
import { validateEnvDefinition, validateEnvOptions } from '../../../envs/loader.js';
import {
  jsonlEnv,
  jsonlTaskCount,
  multiplyCarryoverTokens,
  multiplyEnv,
  multiplyProblem,
  multiplyTrace,
  parseJsonlProblems,
  problemSeed,
  runningSumCarryoverTokens,
  runningSumEnv,
  runningSumProblem,
  runningSumTrace,
  splitProblems,
  type JsonlOptions,
  type MultiplyOptions,
  type RunningSumOptions,
} from '../../../envs/reasoning/index.js';
import { getBuiltinEnv } from '../../../envs/registry.js';
import type { EnvDefinition, TaskRef } from '../../../envs/types.js';
import { ByteTokenizer } from '../../../models/tokenizer.js';
import { demonstrationTraceSegments, finalWindowTokens, type DelethinkTracing } from '../../../rollout/delethink.js';
import { REPO } from '../../helpers/services.js';

const tokenizer = new ByteTokenizer();
const SPLITS = ['train', 'eval', 'test'] as const;

/** Play one episode: reset, one step with `text`, score. */
async function play<O>(def: EnvDefinition<O>, options: O, task: TaskRef, text: string) {
  const env = await def.create(options);
  const question = await env.reset(task);
  const step = await env.step(text);
  return { question, step, reward: await env.score() };
}

/** Decoded text of each segment's response (output tokens). */
function responses(segments: ReturnType<typeof demonstrationTraceSegments>): string[] {
  return segments.map((s) => tokenizer.decode(s.tokens.filter((_, i) => s.turn[i] >= 0)));
}

/** Decoded carryover tail of each chunk l ≥ 2 (the prompt after q ⊕ head). */
function carriedTexts(segments: ReturnType<typeof demonstrationTraceSegments>, queryLength: number, t: DelethinkTracing): string[] {
  return segments.slice(1).map((s) => {
    const promptLength = s.turn.findIndex((x) => x >= 0);
    return tokenizer.decode(s.tokens.slice(queryLength + t.headTokens, promptLength));
  });
}

describe('reasoning/running-sum', () => {
  const options = validateEnvOptions(runningSumEnv, {}) as RunningSumOptions;

  it('is registered and writes the documented question and trace', () => {
    expect(getBuiltinEnv('reasoning/running-sum')).toBe(runningSumEnv);
    validateEnvDefinition(runningSumEnv, 'reasoning/running-sum');
    const problem = { question: '', answer: '14', digits: [3, 1, 4, 1, 5], modulus: 100 };
    expect(runningSumTrace(problem)).toBe('0:3=3 1:1=4 2:4=8 3:1=9 4:5=14 </think> \\boxed{14}');
    const mod10 = { ...problem, modulus: 10 };
    expect(runningSumTrace(mod10)).toBe('0:3=3 1:1=4 2:4=8 3:1=9 4:5=4 </think> \\boxed{4}');
    expect(runningSumProblem({ split: 'eval', index: 3, seed: 0 }, options).question).toMatch(/^Sum mod 100: 0:\d 1:\d .* 15:\d\n$/);
  });

  it('demonstrations with noise 0 are verified correct on every split, and span several chunks', async () => {
    const t: DelethinkTracing = { chunkTokens: 64, carryoverTokens: 32, headTokens: 8, maxChunks: 8, carry: 'paper' };
    for (const split of SPLITS) {
      for (let index = 0; index < 30; index++) {
        const task = { split, index, seed: 5 };
        const demo = runningSumEnv.demonstrations!(task, options);
        const trace = demo.turns[1].text;
        expect((await play(runningSumEnv, options, task, trace)).reward).toEqual({ total: 1, parts: { correct: 1, answered: 1 } });
        // Under Delethink only the last chunk's window (carryover + response) reaches the env.
        const chunks = responses(demonstrationTraceSegments(demo, t));
        expect(chunks.length).toBeGreaterThanOrEqual(3);
        const window = tokenizer.decode(
          finalWindowTokens(
            chunks.map((text) => ({ response: tokenizer.encode(text) })),
            t,
          ),
        );
        expect((await play(runningSumEnv, options, task, window)).reward.total).toBe(1);
      }
    }
  });

  it('keeps a complete entry in every carryover of m ≥ runningSumCarryoverTokens', () => {
    const check = (m: number) => {
      const t: DelethinkTracing = { chunkTokens: 2 * m + 1, carryoverTokens: m, headTokens: 0, maxChunks: 100, carry: 'paper' };
      let missing = 0;
      for (let index = 0; index < 40; index++) {
        const demo = runningSumEnv.demonstrations!({ split: 'train', index, seed: 1 }, options);
        const queryLength = 1 + tokenizer.encode(demo.turns[0].text).length;
        const segments = demonstrationTraceSegments(demo, t);
        let written = '';
        responses(segments).forEach((previous, l) => {
          written += previous;
          // Boundaries inside the final `</think> \\boxed{…}` have no entry left to carry.
          if (l === segments.length - 1 || written.includes('</')) return;
          if (!/\s\d+:\d=\d+\s/.test(carriedTexts(segments, queryLength, t)[l])) missing++;
        });
      }
      return missing;
    };
    expect(runningSumCarryoverTokens(options)).toBe(16);
    expect(check(runningSumCarryoverTokens(options))).toBe(0);
    expect(check(9)).toBeGreaterThan(0);
  });

  it('slips with probability `noise`, so some demonstrations are wrong', async () => {
    const noisy = { ...options, noise: 0.1 };
    let correct = 0;
    for (let index = 0; index < 60; index++) {
      const task = { split: 'train', index, seed: 2 };
      const reward = (await play(runningSumEnv, noisy, task, runningSumEnv.demonstrations!(task, noisy).turns[1].text)).reward;
      // The `demonstrator` baseline of `horizon eval` is exactly this score.
      expect(await runningSumEnv.baselines!(task, noisy)).toEqual({ demonstrator: reward });
      correct += reward.total;
    }
    // P(no slip in 16 entries) = 0.9^16 ≈ 0.19 (a slip of +1 then −1 can cancel, rarely).
    expect(correct).toBeGreaterThan(0);
    expect(correct).toBeLessThan(30);
  });

  it('draws lengths in [minLength, length] and honours the modulus', () => {
    const opts = validateEnvOptions(runningSumEnv, { length: 12, minLength: 4, modulus: 10 }) as RunningSumOptions;
    const lengths = new Set<number>();
    for (let index = 0; index < 200; index++) {
      const p = runningSumProblem({ split: 'train', index, seed: 0 }, opts);
      lengths.add(p.digits.length);
      expect(Number(p.answer)).toBe(p.digits.reduce((a, b) => a + b, 0) % 10);
    }
    expect(Math.min(...lengths)).toBe(4);
    expect(Math.max(...lengths)).toBe(12);
    expect(() => validateEnvOptions(runningSumEnv, { length: 3, minLength: 5 })).toThrow(ConfigError);
  });
});

describe('reasoning/multiply', () => {
  const options = validateEnvOptions(multiplyEnv, {}) as MultiplyOptions;

  it('writes the documented column-by-column trace', () => {
    const problem = { question: '', answer: '169956', a: '4721', b: '36' };
    expect(multiplyTrace(problem)).toBe(
      'c0+1*6=6 k0 r6; c0+2*6=12+1*3=15 k1 r56; c1+7*6=43+2*3=49 k2 r956; c4+4*6=28+7*3=49 k3 r9956; c4+4*3=16 k4 r69956; c1 k5 r169956; </think> \\boxed{169956}',
    );
    expect(multiplyTrace({ question: '', answer: '1000', a: '8', b: '125' })).toMatch(/ r1000; <\/think> \\boxed\{1000\}$/);
  });

  it('demonstrations with noise 0 are verified correct for many digit counts', async () => {
    for (const [digitsA, digitsB] of [
      [1, 1],
      [2, 1],
      [4, 3],
      [3, 5],
      [9, 9],
    ]) {
      const opts = validateEnvOptions(multiplyEnv, { digitsA, digitsB }) as MultiplyOptions;
      for (let index = 0; index < 20; index++) {
        const task = { split: SPLITS[index % 3], index, seed: 9 };
        const problem = multiplyProblem(task, opts);
        expect(problem.a).toMatch(new RegExp(`^[1-9]\\d{${digitsA - 1}}$`));
        expect(problem.answer).toBe((BigInt(problem.a) * BigInt(problem.b)).toString());
        const demo = multiplyEnv.demonstrations!(task, opts);
        expect((await play(multiplyEnv, opts, task, demo.turns[1].text)).reward.total).toBe(1);
      }
    }
  });

  it('keeps a complete state in every carryover of m ≥ multiplyCarryoverTokens', () => {
    const check = (m: number) => {
      const t: DelethinkTracing = { chunkTokens: 2 * m + 3, carryoverTokens: m, headTokens: 0, maxChunks: 100, carry: 'paper' };
      let missing = 0;
      let boundaries = 0;
      for (let index = 0; index < 40; index++) {
        const demo = multiplyEnv.demonstrations!({ split: 'train', index, seed: 1 }, options);
        const queryLength = 1 + tokenizer.encode(demo.turns[0].text).length;
        const segments = demonstrationTraceSegments(demo, t);
        const carried = carriedTexts(segments, queryLength, t);
        let written = '';
        responses(segments).forEach((previous, l) => {
          written += previous;
          if (l === segments.length - 1 || written.includes('</')) return;
          boundaries++;
          if (!/[=c]\d+ k\d+ r\d+;/.test(carried[l])) missing++;
        });
      }
      expect(boundaries).toBeGreaterThan(40);
      return missing;
    };
    expect(multiplyCarryoverTokens(options)).toBe(59);
    expect(check(multiplyCarryoverTokens(options))).toBe(0);
    expect(check(24)).toBeGreaterThan(0);
  });

  it('slips with probability `noise`', async () => {
    const noisy = { ...options, noise: 0.1 };
    let correct = 0;
    for (let index = 0; index < 60; index++) {
      const task = { split: 'train', index, seed: 2 };
      correct += (await play(multiplyEnv, noisy, task, multiplyEnv.demonstrations!(task, noisy).turns[1].text)).reward.total;
    }
    expect(correct).toBeGreaterThan(0);
    expect(correct).toBeLessThan(50);
  });
});

describe('splits and the episode contract', () => {
  it('gives train, eval and test disjoint seeds; held-out problems do not depend on the run seed', () => {
    const seeds = SPLITS.map(
      (split) => new Set(Array.from({ length: 1000 }, (_, index) => problemSeed('reasoning/running-sum', { split, index, seed: 0 }, 1))),
    );
    for (const [a, b] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ])
      for (const s of seeds[a]) expect(seeds[b].has(s)).toBe(false);
    const opts = validateEnvOptions(runningSumEnv, {}) as RunningSumOptions;
    const q = (split: string, seed: number) => runningSumProblem({ split, index: 7, seed }, opts).question;
    expect(q('eval', 1)).toBe(q('eval', 2));
    expect(q('test', 1)).toBe(q('test', 2));
    expect(q('train', 1)).not.toBe(q('train', 2));
    expect(runningSumEnv.taskCount('test', opts)).toBe(1000);
    expect(runningSumEnv.taskCount('valid', opts)).toBe(0);
  });

  it('takes one step, then scores the last chunk; an unanswered trace scores 0', async () => {
    const opts = validateEnvOptions(runningSumEnv, {}) as RunningSumOptions;
    const task = { split: 'eval', index: 0, seed: 0 };
    const env = await runningSumEnv.create(opts);
    await env.reset(task);
    expect(await env.score()).toEqual({ total: 0, parts: { correct: 0, answered: 0 } });
    expect(await env.step('0:1=1 1:2=3')).toEqual({ observation: '', done: true });
    expect(() => env.step('again')).toThrow(EnvError);
    expect(await env.score()).toEqual({ total: 0, parts: { correct: 0, answered: 0 } });
    const wrong = await play(runningSumEnv, opts, task, '... </think> \\boxed{100}');
    expect(wrong.reward).toEqual({ total: 0, parts: { correct: 0, answered: 1 } });
    // The built-in tasks require the end-of-thinking marker.
    const answer = runningSumProblem(task, opts).answer;
    expect((await play(runningSumEnv, opts, task, `\\boxed{${answer}}`)).reward.total).toBe(0);
    await expect(async () => (await runningSumEnv.create(opts)).reset({ split: 'eval', index: 1000, seed: 0 })).rejects.toThrow(
      /outside split 'eval'/,
    );
  });
});

describe('reasoning/jsonl', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'horizon-jsonl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('loads {question, answer} lines and names the line of a bad one', () => {
    expect(parseJsonlProblems('{"question":"q1","answer":3}\n\n{"question":"q2","answer":" 1/2 ","id":7}\n', 'd.jsonl')).toEqual([
      { question: 'q1', answer: '3', source: 'd.jsonl:1' },
      { question: 'q2', answer: '1/2', source: 'd.jsonl:3' },
    ]);
    expect(() => parseJsonlProblems('{"question":"q1","answer":3}\n{"question":"q2"}\n', 'd.jsonl')).toThrow(/d\.jsonl:2: answer: /);
    expect(() => parseJsonlProblems('{"question":"q1","answer":3}\n{"question":"q2", answer: 1}\n', 'd.jsonl')).toThrow(
      /d\.jsonl:2 is not valid JSON/,
    );
    expect(() => parseJsonlProblems('{"question":"","answer":3}\n', 'd.jsonl')).toThrow(/d\.jsonl:1: question/);
    expect(() => parseJsonlProblems('[1,2]\n', 'd.jsonl')).toThrow(ConfigError);
  });

  it('splits one file by fractions after a seeded shuffle, disjoint and complete', () => {
    const file = write('all.jsonl', Array.from({ length: 20 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: i })).join('\n'));
    const opts = validateEnvOptions(jsonlEnv, { path: file }) as JsonlOptions;
    expect(SPLITS.map((s) => jsonlTaskCount(s, opts))).toEqual([16, 2, 2]);
    const problems = parseJsonlProblems(
      Array.from({ length: 20 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: i })).join('\n'),
      'x',
    );
    const a = splitProblems(problems, 0.1, 0.2, 3);
    const b = splitProblems(problems, 0.1, 0.2, 3);
    expect(a).toEqual(b);
    expect([a.train.length, a.eval.length, a.test.length]).toEqual([14, 2, 4]);
    const all = [...a.train, ...a.eval, ...a.test].map((p) => p.question).sort();
    expect(all).toEqual(problems.map((p) => p.question).sort());
    expect(() => validateEnvOptions(jsonlEnv, {})).toThrow(ConfigError);
    expect(() => validateEnvOptions(jsonlEnv, { path: file, evalFraction: 0.6, testFraction: 0.6 })).toThrow(ConfigError);
  });

  it('plays the example file: questions, verified answers, and demonstrations from traces', async () => {
    const file = path.join(REPO, 'examples/data/arith.jsonl');
    const opts = validateEnvOptions(jsonlEnv, { files: { train: file, test: file } }) as JsonlOptions;
    expect(jsonlTaskCount('train', opts)).toBe(20);
    expect(jsonlTaskCount('eval', opts)).toBe(0);
    for (let index = 0; index < 20; index++) {
      const task = { split: 'train', index, seed: 0 };
      const demo = jsonlEnv.demonstrations!(task, opts);
      const episode = await play(jsonlEnv, opts, task, demo.turns[1].text);
      expect(episode.question).toBe(demo.turns[0].text);
      expect(episode.reward.total).toBe(1);
    }
    expect((await play(jsonlEnv, opts, { split: 'test', index: 5, seed: 0 }, '</think> \\boxed{17*23}')).reward.total).toBe(0);
  });

  it('verifies without the marker when requireEndOfThinking is false, and explains a missing trace', async () => {
    const file = write('one.jsonl', '{"question":"What is 17*23?","answer":"391"}\n');
    const strict = validateEnvOptions(jsonlEnv, { files: { train: file } }) as JsonlOptions;
    const loose = { ...strict, requireEndOfThinking: false };
    const task = { split: 'train', index: 0, seed: 0 };
    expect((await play(jsonlEnv, strict, task, 'The answer is 391.')).reward.total).toBe(0);
    expect((await play(jsonlEnv, loose, task, 'The answer is 391.')).reward.total).toBe(1);
    expect(() => jsonlEnv.demonstrations!(task, strict)).toThrow(/one\.jsonl:1 has no "trace"/);
    expect(() => jsonlTaskCount('train', { ...strict, files: { train: path.join(dir, 'missing.jsonl') } })).toThrow(/cannot read/);
  });
});
