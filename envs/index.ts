/** Environments: the Env contract, built-ins, the registry and the plug-in loader. */
export type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from './types.js';
export { builtinEnvs, builtinEnvNames, getBuiltinEnv, isBuiltinEnvName, type BuiltinEnvName } from './registry.js';
export {
  checkEnvInstance,
  describeEnvSource,
  loadEnvDefinition,
  validateEnvDefinition,
  validateEnvOptions,
  type EnvSpec,
} from './loader.js';
export {
  GUESS_FEEDBACK,
  GuessEnv,
  guessDemonstration,
  guessEnv,
  guessOptionsSchema,
  guessPrompt,
  guessTaskCount,
  guessTaskFor,
  invalidGuessFeedback,
  type GuessOptions,
} from './toy/guess.js';
