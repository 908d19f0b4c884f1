import { describe, expect, it } from 'vitest';
import { ConfigError, EnvError } from '../../../core/errors.js';
import { GuessEnv, guessDemonstration, guessEnv, guessOptionsSchema, guessTaskFor, type GuessOptions } from '../../../envs/toy/guess.js';
import type { TaskRef } from '../../../envs/types.js';
import { guessReward } from '../../../rewards/guess.js';

const defaults: GuessOptions = guessOptionsSchema.parse({});
const trainTask = (index: number, seed = 0): TaskRef => ({ split: 'train', index, seed });

/** First train task whose hidden number is `target` (every target shows up within a few hundred tasks). */
function taskWithTarget(target: number, options: GuessOptions = defaults): TaskRef {
  for (let index = 0; index < 10_000; index++) {
    if (guessTaskFor(trainTask(index), options).target === target) return trainTask(index);
  }
  throw new Error(`no task with target ${target}`);
}

/** Plays a whole episode with a policy that sees the feedback so far; returns the guesses and the env. */
function play(env: GuessEnv, task: TaskRef, policy: (feedback: string[]) => string): { guesses: string[]; last: { done: boolean } } {
  env.reset(task);
  const guesses: string[] = [];
  const feedback: string[] = [];
  for (;;) {
    const guess = policy(feedback);
    guesses.push(guess);
    const result = env.step(guess);
    feedback.push(result.observation);
    if (result.done) return { guesses, last: result };
    if (guesses.length > 100) throw new Error('episode did not end');
  }
}

/** Binary search over [1, 16] driven only by the env's replies. */
function binarySearchPolicy(maxNumber: number) {
  let low = 1;
  let high = maxNumber;
  let previous = 0;
  return (feedback: string[]): string => {
    const reply = feedback.at(-1);
    if (reply === 'higher\n') low = previous + 1;
    if (reply === 'lower\n') high = previous - 1;
    previous = Math.floor((low + high) / 2);
    return String(previous);
  };
}

describe('toy/guess options', () => {
  it('defaults to 16 numbers, 5 guesses and demo noise 0.5, with a description on every option', () => {
    expect(defaults).toEqual({ maxNumber: 16, maxGuesses: 5, demoNoise: 0.5, demoOpening: 'bisect', hints: false });
    for (const field of Object.values(guessOptionsSchema.shape)) expect(field.description).toBeTruthy();
  });

  it('rejects unknown options and out-of-range values', () => {
    expect(guessOptionsSchema.safeParse({ maxNumbers: 16 }).success).toBe(false);
    expect(guessOptionsSchema.safeParse({ maxNumber: 1 }).success).toBe(false);
    expect(guessOptionsSchema.safeParse({ demoNoise: 1.5 }).success).toBe(false);
  });
});

describe('toy/guess tasks', () => {
  it('has 100000 train tasks, 1000 eval tasks and no others', () => {
    expect(guessEnv.taskCount('train', defaults)).toBe(100_000);
    expect(guessEnv.taskCount('eval', defaults)).toBe(1_000);
    expect(guessEnv.taskCount('test', defaults)).toBe(0);
    expect(guessEnv.taskCount('constructor', defaults)).toBe(0);
  });

  it('derives the same hidden number from the same task ref, and a different sequence for another seed', () => {
    const targets = (seed: number) => Array.from({ length: 50 }, (_, i) => guessTaskFor(trainTask(i, seed), defaults).target);
    expect(targets(0)).toEqual(targets(0));
    expect(targets(1)).not.toEqual(targets(0));
  });

  it('gives train and eval different tasks for the same index', () => {
    const targets = (split: string) => Array.from({ length: 100 }, (_, index) => guessTaskFor({ split, index, seed: 0 }, defaults).target);
    expect(targets('eval')).not.toEqual(targets('train'));
  });

  it('draws every number from 1 to maxNumber about equally often', () => {
    const counts = new Array(17).fill(0);
    for (let i = 0; i < 1600; i++) counts[guessTaskFor(trainTask(i), defaults).target] += 1;
    expect(counts[0]).toBe(0);
    // Expected 100 each; ±40 is about ±4 standard deviations of a binomial(1600, 1/16).
    for (let n = 1; n <= 16; n++) expect(Math.abs(counts[n] - 100)).toBeLessThan(40);
  });

  it('refuses a split it does not have, naming the valid ones', () => {
    const env = new GuessEnv(defaults);
    expect(() => env.reset({ split: 'test', index: 0, seed: 0 })).toThrow(ConfigError);
    expect(() => env.reset({ split: 'test', index: 0, seed: 0 })).toThrow(/valid splits: train \(100000 tasks\), eval \(1000 tasks\)/);
    expect(() => env.reset({ split: 'eval', index: 1000, seed: 0 })).toThrow(/0\.\.999/);
  });
});

describe('toy/guess episodes', () => {
  it('opens with the prompt', () => {
    expect(new GuessEnv(defaults).reset(trainTask(0))).toBe('Guess my number from 1 to 16.\n');
  });

  it('lets a binary-search agent find every number from 1 to 16 within 5 guesses', () => {
    for (let target = 1; target <= 16; target++) {
      const env = new GuessEnv(defaults);
      const { guesses } = play(env, taskWithTarget(target), binarySearchPolicy(16));
      expect(guesses.at(-1)).toBe(String(target));
      expect(guesses.length).toBeLessThanOrEqual(5);
      expect(env.score()).toEqual({ total: 1, parts: { solved: 1, guesses: guesses.length, invalid: 0 } });
    }
  });

  it('replies higher / lower / correct to a hand-played episode (target 16)', () => {
    const env = new GuessEnv(defaults);
    env.reset(taskWithTarget(16));
    expect(env.step('8')).toEqual({ observation: 'higher\n', done: false });
    expect(env.step('20 ')).toEqual({ observation: 'invalid guess: write a whole number from 1 to 16\n', done: false });
    expect(env.step(' 16\n')).toEqual({ observation: 'correct\n', done: true });
    expect(env.score()).toEqual({ total: 1, parts: { solved: 1, guesses: 3, invalid: 1 } });
    expect(env.history().map((turn) => turn.text)).toEqual([
      'Guess my number from 1 to 16.\n',
      '8',
      'higher\n',
      '20 ',
      'invalid guess: write a whole number from 1 to 16\n',
      ' 16\n',
      'correct\n',
    ]);
  });

  it('answers text that is not a whole number in range with an observation, and counts it as a guess', () => {
    const env = new GuessEnv(defaults);
    env.reset(taskWithTarget(7));
    const invalid = ['seven', '0', '17', '3.5', '+7', '7 8', ''];
    for (const [i, text] of invalid.slice(0, 4).entries()) {
      expect(env.step(text)).toEqual({ observation: 'invalid guess: write a whole number from 1 to 16\n', done: false });
      expect(env.score().parts.guesses).toBe(i + 1);
    }
    expect(env.step(invalid[4])).toEqual({ observation: 'invalid guess: write a whole number from 1 to 16\n', done: true });
    expect(env.score()).toEqual({ total: 0, parts: { solved: 0, guesses: 5, invalid: 5 } });
  });

  it('ends the episode at the guess cap and refuses further steps', () => {
    const env = new GuessEnv({ ...defaults, maxGuesses: 3 });
    env.reset(taskWithTarget(9));
    expect(env.step('1').done).toBe(false);
    expect(env.step('2').done).toBe(false);
    expect(env.step('3')).toEqual({ observation: 'higher\n', done: true });
    expect(() => env.step('9')).toThrow(EnvError);
    expect(env.score()).toEqual({ total: 0, parts: { solved: 0, guesses: 3, invalid: 0 } });
  });

  it('refuses step and score before reset', () => {
    const env = new GuessEnv(defaults);
    expect(() => env.step('1')).toThrow(/before reset/);
    expect(() => env.score()).toThrow(/before reset/);
  });

  it('refuses hand-built options that break the schema', () => {
    expect(() => new GuessEnv({ maxNumber: 0, maxGuesses: 5, demoNoise: 0, demoOpening: 'bisect', hints: false })).toThrow(
      /env\.options\.maxNumber/,
    );
  });
});

describe('toy/guess demonstrations', () => {
  const policyGuesses = (task: TaskRef, options: GuessOptions) =>
    guessDemonstration(task, options)
      .turns.filter((turn) => turn.role === 'policy')
      .map((turn) => Number(turn.text));

  it('is exact binary search when demoNoise is 0 (hand-checked sequences)', () => {
    const exact = { ...defaults, demoNoise: 0 };
    expect(policyGuesses(taskWithTarget(16), exact)).toEqual([8, 12, 14, 15, 16]);
    expect(policyGuesses(taskWithTarget(5), exact)).toEqual([8, 4, 6, 5]);
    expect(policyGuesses(taskWithTarget(1), exact)).toEqual([8, 4, 2, 1]);
    expect(policyGuesses(taskWithTarget(8), exact)).toEqual([8]);
    expect(policyGuesses(taskWithTarget(11), exact)).toEqual([8, 12, 10, 11]);
  });

  it('only makes guesses consistent with the feedback so far, and ends with correct or the cap', () => {
    for (let index = 0; index < 300; index++) {
      const task = trainTask(index);
      const { turns } = guessDemonstration(task, defaults);
      expect(turns[0]).toEqual({ role: 'env', text: 'Guess my number from 1 to 16.\n' });
      let low = 1;
      let high = 16;
      for (let t = 1; t < turns.length; t += 2) {
        expect(turns[t].role).toBe('policy');
        expect(turns[t + 1].role).toBe('env');
        const guess = Number(turns[t].text);
        expect(turns[t].text).toBe(String(guess));
        expect(guess).toBeGreaterThanOrEqual(low);
        expect(guess).toBeLessThanOrEqual(high);
        if (turns[t + 1].text === 'higher\n') low = guess + 1;
        else if (turns[t + 1].text === 'lower\n') high = guess - 1;
        else expect(turns[t + 1].text).toBe('correct\n');
      }
      const guesses = (turns.length - 1) / 2;
      expect(turns.at(-1)!.text === 'correct\n' || guesses === defaults.maxGuesses).toBe(true);
      expect(guesses).toBeLessThanOrEqual(defaults.maxGuesses);
      // The transcript replays through a fresh env to the same observations and the same reward.
      const env = new GuessEnv(defaults);
      env.reset(task);
      for (let t = 1; t < turns.length; t += 2) expect(env.step(turns[t].text).observation).toBe(turns[t + 1].text);
      expect(env.score()).toEqual(guessReward(turns, guessTaskFor(task, defaults)));
    }
  });

  it('is deterministic per task', () => {
    expect(guessDemonstration(trainTask(42), defaults)).toEqual(guessDemonstration(trainTask(42), defaults));
    expect(guessDemonstration(trainTask(42, 1), defaults)).not.toEqual(guessDemonstration(trainTask(42), defaults));
  });

  it('with noise solves less often than binary search, so RL has something to improve', () => {
    const solveRate = (options: GuessOptions) => {
      let solved = 0;
      for (let index = 0; index < 1000; index++) {
        const task = trainTask(index);
        solved += guessReward(guessDemonstration(task, options).turns, guessTaskFor(task, options)).total;
      }
      return solved / 1000;
    };
    expect(solveRate({ ...defaults, demoNoise: 0 })).toBe(1);
    const noisy = solveRate(defaults);
    expect(noisy).toBeGreaterThan(0.6);
    expect(noisy).toBeLessThan(0.98);
  });
});

describe('toy/guess with hints', () => {
  it('names the range still possible in every reply, narrowing it as guesses come in', async () => {
    const { guessEnv: def } = await import('../../../envs/toy/guess.js');
    const options = def.optionsSchema!.parse({ maxNumber: 8, maxGuesses: 4, hints: true });
    const env = await def.create(options);
    const task = { split: 'train', index: 0, seed: 0 };
    env.reset(task);
    const { guessTaskFor } = await import('../../../envs/toy/guess.js');
    const target = guessTaskFor(task, options).target;
    // Walk the range from below: every reply below the target says "higher (g+1-8)".
    for (let g = 1; g < Math.min(target, 4); g++) {
      expect((await env.step(String(g))).observation).toBe(`higher (${g + 1}-8)\n`);
    }
  });

  it('keeps demonstrations consistent when replies carry the range', async () => {
    const { guessEnv: def, guessTaskFor } = await import('../../../envs/toy/guess.js');
    const options = def.optionsSchema!.parse({ maxNumber: 16, maxGuesses: 5, hints: true, demoNoise: 0 });
    for (let index = 0; index < 50; index++) {
      const task = { split: 'train', index, seed: 3 };
      const demo = def.demonstrations!(task, options);
      expect(demo.turns.at(-1)!.text).toBe('correct\n'); // binary search always wins 1..16 in 5
      expect(demo.turns.filter((t) => t.role === 'policy').at(-1)!.text).toBe(String(guessTaskFor(task, options).target));
    }
  });
});

describe('toy/guess demonstrations with a random opening', () => {
  it('open with a random number and bisect after it (demoNoise 0), so the opening is the only imperfection', async () => {
    const { guessEnv: def } = await import('../../../envs/toy/guess.js');
    const options = def.optionsSchema!.parse({ maxNumber: 16, maxGuesses: 4, demoNoise: 0, demoOpening: 'random', hints: true });
    const openings = new Set<string>();
    for (let index = 0; index < 200; index++) {
      const demo = def.demonstrations!({ split: 'train', index, seed: 5 }, options);
      const guesses = demo.turns.filter((t) => t.role === 'policy').map((t) => Number(t.text));
      openings.add(String(guesses[0]));
      // After the opening, each guess is the midpoint of the range the previous reply named.
      for (let i = 1; i < guesses.length; i++) {
        const range = /\((\d+)-(\d+)\)/.exec(demo.turns[2 * i].text)!;
        expect(guesses[i]).toBe(Math.floor((Number(range[1]) + Number(range[2])) / 2));
      }
    }
    expect(openings.size).toBeGreaterThan(12); // openings spread over 1..16
  });
});
