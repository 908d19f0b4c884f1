import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, PluginError } from '../../../core/errors.js';
import { checkEnvInstance, describeEnvSource, loadEnvDefinition, validateEnvOptions, type EnvSpec } from '../../../envs/loader.js';
import { GuessEnv, guessEnv } from '../../../envs/toy/guess.js';
import type { EnvDefinition } from '../../../envs/types.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const fixtures = resolve(repoRoot, 'test/fixtures/plugins');

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('loadEnvDefinition: built-ins', () => {
  it('returns the registered definition for a built-in name', async () => {
    expect(await loadEnvDefinition({ name: 'toy/guess' }, '/nowhere')).toBe(guessEnv);
  });

  it('refuses a spec with both or neither of name and module', async () => {
    expect(await rejection(loadEnvDefinition({}, repoRoot))).toBeInstanceOf(ConfigError);
    const both = await rejection(loadEnvDefinition({ name: 'toy/guess', module: './x.ts' }, repoRoot));
    expect(both).toBeInstanceOf(ConfigError);
    expect(both.message).toContain('exactly one of env.name');
  });

  it('refuses an unknown built-in name, listing the valid ones', async () => {
    const error = await rejection(loadEnvDefinition({ name: 'toy/nope' }, repoRoot));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/valid names: .*toy\/guess/);
  });
});

describe('loadEnvDefinition: plug-in modules', () => {
  it('loads the example plug-in relative to baseDir and runs an episode with it', async () => {
    const spec: EnvSpec = { module: './examples/my-env.ts' };
    const def = await loadEnvDefinition(spec, repoRoot);
    expect(def.name).toBe('example/reverse-word');
    const options = validateEnvOptions(def, { maxTries: 2 });
    expect(options).toEqual({ minLength: 3, maxLength: 6, maxTries: 2 });
    expect(def.taskCount('train', options)).toBe(10_000);

    const env = checkEnvInstance(await def.create(options), describeEnvSource(spec));
    const prompt = await env.reset({ split: 'train', index: 3, seed: 0 });
    const word = /^Reverse the word: ([a-z]+)\n$/.exec(prompt)![1];
    expect(word.length).toBeGreaterThanOrEqual(3);
    expect(word.length).toBeLessThanOrEqual(6);
    expect(await env.step(word + 'x')).toEqual({ observation: 'wrong, try again\n', done: false });
    expect(await env.step([...word].reverse().join(''))).toEqual({ observation: 'correct\n', done: true });
    expect(await env.score()).toEqual({ total: 1, parts: { solved: 1, tries: 2 } });

    // Its demonstrations replay through the env to the same observations.
    const demo = def.demonstrations!({ split: 'train', index: 3, seed: 0 }, options);
    const replay = checkEnvInstance(await def.create(options), 'example');
    expect(await replay.reset({ split: 'train', index: 3, seed: 0 })).toBe(demo.turns[0].text);
    expect((await replay.step(demo.turns[1].text)).observation).toBe(demo.turns[2].text);
  });

  it('ends the example episode after maxTries wrong answers', async () => {
    const def = await loadEnvDefinition({ module: 'my-env.ts' }, resolve(repoRoot, 'examples'));
    const env = checkEnvInstance(await def.create(validateEnvOptions(def, { maxTries: 2 })), 'example');
    await env.reset({ split: 'eval', index: 0, seed: 0 });
    expect((await env.step('a')).done).toBe(false);
    expect(await env.step('b')).toEqual({ observation: 'wrong, no tries left\n', done: true });
    expect(await env.score()).toEqual({ total: 0, parts: { solved: 0, tries: 2 } });
  });

  it('accepts a named `env` export', async () => {
    const def = await loadEnvDefinition({ module: './named-export.ts' }, fixtures);
    expect(def.name).toBe('fixture/echo');
    const env = checkEnvInstance(await def.create({}), 'fixture');
    expect(await env.reset({ split: 'train', index: 0, seed: 0 })).toBe('say something\n');
    expect(await env.step('hi')).toEqual({ observation: 'you said hi\n', done: true });
  });

  it('loads the broken example, whose env instance then fails the check naming `step`', async () => {
    const spec: EnvSpec = { module: './examples/broken-env.ts' };
    const def = await loadEnvDefinition(spec, repoRoot);
    const error = thrown(() => checkEnvInstance(def.create({}), describeEnvSource(spec)));
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toBe(
      'env module ./examples/broken-env.ts: create() returned an object that does not satisfy the Env contract: missing `step`',
    );
  });

  it('lists every missing or mistyped required field at once', async () => {
    const error = await rejection(loadEnvDefinition({ module: './missing-create.ts' }, fixtures));
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).code).toBe('E_PLUGIN');
    expect(error.message).toBe(
      'env module ./missing-create.ts does not satisfy the Env contract: missing `create` (function), `taskCount` must be a function (got number)',
    );
  });

  it('checks the optional fields when present', async () => {
    const error = await rejection(loadEnvDefinition({ module: './bad-optional-fields.ts' }, fixtures));
    expect(error.message).toBe(
      'env module ./bad-optional-fields.ts does not satisfy the Env contract: `name` must be a non-empty string, ' +
        '`demonstrations` must be a function (got string), `optionsSchema` must be a zod schema (got an object)',
    );
  });

  it('recognises an exported Env instance and says to wrap it in a definition', async () => {
    const error = await rejection(loadEnvDefinition({ module: './instance-exported.ts' }, fixtures));
    expect(error.message).toContain('missing `name` (string), missing `taskCount` (function), missing `create` (function)');
    expect(error.message).toContain('this looks like an Env instance');
  });

  it('refuses a module with neither a default nor an `env` export, listing what it exports', async () => {
    const error = await rejection(loadEnvDefinition({ module: './no-env-export.ts' }, fixtures));
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toContain('no default export and no named `env` export (exports found: createGame)');
  });

  it('refuses a default export that is not an object', async () => {
    const error = await rejection(loadEnvDefinition({ module: './not-an-object.ts' }, fixtures));
    expect(error.message).toBe(
      'env module ./not-an-object.ts does not satisfy the Env contract: its export is string; export an object with `name`, `taskCount` and `create`',
    );
  });

  it('wraps an error thrown while importing, with the path and the cause', async () => {
    const error = await rejection(loadEnvDefinition({ module: './throws-on-import.ts' }, fixtures));
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toContain(`env module ./throws-on-import.ts failed to load (${resolve(fixtures, 'throws-on-import.ts')})`);
    expect(error.message).toContain('fixture: cannot reach the game server');
    expect((error.cause as Error).message).toBe('fixture: cannot reach the game server');
  });

  it('says when the module file does not exist, and where it looked', async () => {
    const error = await rejection(loadEnvDefinition({ module: './no-such-env.ts' }, fixtures));
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toContain(`env module ./no-such-env.ts not found: ${resolve(fixtures, 'no-such-env.ts')} does not exist`);
  });

  it('says when the module path is a folder', async () => {
    const error = await rejection(loadEnvDefinition({ module: '.' }, fixtures));
    expect(error.message).toContain('is not a file');
  });
});

describe('validateEnvOptions', () => {
  it('applies the schema defaults, also when options are absent', () => {
    expect(validateEnvOptions(guessEnv, undefined)).toEqual({
      maxNumber: 16,
      maxGuesses: 5,
      demoNoise: 0.5,
      demoOpening: 'bisect',
      hints: false,
    });
    expect(validateEnvOptions(guessEnv, { maxNumber: 100 })).toEqual({
      maxNumber: 100,
      maxGuesses: 5,
      demoNoise: 0.5,
      demoOpening: 'bisect',
      hints: false,
    });
  });

  it('names each bad option by its path, with the value given and the valid option names', () => {
    const error = thrown(() => validateEnvOptions(guessEnv, { maxNumber: 1, maxGuess: 3 }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(
      'invalid env.options for toy/guess: env.options.maxNumber: Too small: expected number to be >=2 (got 1); ' +
        'env.options: unknown option `maxGuess`; valid options: maxNumber, maxGuesses, demoNoise, demoOpening, hints',
    );
  });

  it('lists the valid choices of an enum and the options of a nested object', () => {
    const def: EnvDefinition<unknown> = {
      name: 'fixture/modes',
      optionsSchema: z
        .object({
          mode: z.enum(['easy', 'hard']).default('easy'),
          tools: z
            .object({ search: z.boolean().default(true), shell: z.boolean().default(false) })
            .strict()
            .prefault({}),
        })
        .strict(),
      taskCount: () => 1,
      create: () => new GuessEnv(validateEnvOptions(guessEnv, {})),
    };
    const error = thrown(() => validateEnvOptions(def, { mode: 'medium', tools: { browse: true } }));
    expect(error.message).toContain('env.options.mode: Invalid option: expected one of "easy"|"hard" (got "medium")');
    expect(error.message).toContain('env.options.tools: unknown option `browse`; valid options: search, shell');
  });

  it('passes options through unchanged when the definition has no schema', () => {
    const def: EnvDefinition<unknown> = {
      name: 'fixture/raw',
      taskCount: () => 1,
      create: () => new GuessEnv(validateEnvOptions(guessEnv, {})),
    };
    expect(validateEnvOptions(def, { anything: [1, 2] })).toEqual({ anything: [1, 2] });
  });
});

describe('checkEnvInstance', () => {
  it('accepts an env whose methods live on its class', () => {
    const env = new GuessEnv(validateEnvOptions(guessEnv, {}));
    expect(checkEnvInstance(env, 'built-in env toy/guess')).toBe(env);
  });

  it('names every missing or mistyped method', () => {
    const error = thrown(() => checkEnvInstance({ reset: () => 'x', step: 3, close: 'later' }, 'env module ./x.ts'));
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toBe(
      'env module ./x.ts: create() returned an object that does not satisfy the Env contract: ' +
        'missing `score`, `step` must be a function (got number), `close` must be a function (got string)',
    );
  });

  it('explains a missing return value and an un-awaited promise', () => {
    expect(thrown(() => checkEnvInstance(undefined, 'env module ./x.ts')).message).toContain('create() returned undefined');
    expect(thrown(() => checkEnvInstance(Promise.resolve({}), 'env module ./x.ts')).message).toContain('await create(options)');
  });
});
