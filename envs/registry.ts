/**
 * Built-in environments by config name (`env: { name: toy/guess }`). Adding one is one line here; its
 * key becomes a valid `env.name`.
 */
import { ConfigError } from '../core/errors.js';
import { appworldEnv } from './appworld/env.js';
import { memalphaEnv } from './memalpha/env.js';
import { guessEnv } from './toy/guess.js';
import { toolworldEnv } from './toolworld/env.js';
import { jsonlEnv, multiplyEnv, runningSumEnv } from './reasoning/index.js';
import type { EnvDefinition } from './types.js';

/** Every built-in environment, keyed by the name a config uses. */
export const builtinEnvs = {
  'toy/guess': guessEnv,
  toolworld: toolworldEnv,
  appworld: appworldEnv,
  memalpha: memalphaEnv,
  'reasoning/running-sum': runningSumEnv,
  'reasoning/multiply': multiplyEnv,
  'reasoning/jsonl': jsonlEnv,
} satisfies Record<string, EnvDefinition<any>>;

/** A valid `env.name`. */
export type BuiltinEnvName = keyof typeof builtinEnvs;

/** The valid `env.name` values, in registration order. */
export const builtinEnvNames = Object.keys(builtinEnvs) as BuiltinEnvName[];

/** True when `name` is a built-in environment. */
export function isBuiltinEnvName(name: string): name is BuiltinEnvName {
  return Object.hasOwn(builtinEnvs, name);
}

/** The built-in definition called `name`; an unknown name is a ConfigError listing the valid ones. */
export function getBuiltinEnv(name: string): EnvDefinition<any> {
  if (!isBuiltinEnvName(name)) {
    throw new ConfigError(
      `env.name: unknown built-in environment '${name}'; valid names: ${builtinEnvNames.join(', ')} ` +
        `(or set env.module to the path of your own environment module)`,
      { context: { name, valid: builtinEnvNames } },
    );
  }
  return builtinEnvs[name];
}
