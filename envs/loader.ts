/**
 * Loading and validating environments: a built-in name or a user's module (`env.module`, resolved
 * relative to the config file). Every check reports all problems at once, so a plug-in author fixes their
 * module in one pass. Modules are imported directly, `.ts` included: every horizon process runs under tsx.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, PluginError } from '../core/errors.js';
import { getBuiltinEnv } from './registry.js';
import type { Env, EnvDefinition } from './types.js';

/** Where an environment comes from: exactly one of a built-in `name` or a `module` path. */
export interface EnvSpec {
  readonly name?: string;
  readonly module?: string;
}

/** How messages name an environment: `built-in env toy/guess` or `env module ./my-env.ts`. */
export function describeEnvSource(spec: EnvSpec): string {
  return spec.module !== undefined ? `env module ${spec.module}` : `built-in env ${spec.name}`;
}

/**
 * The definition behind `spec`: a built-in looked up by name, or the module at `resolve(baseDir, module)`
 * (its `export default`, else its named `env` export), checked against the contract.
 * Errors: ConfigError for an unknown built-in name or a spec with both/neither field; PluginError for a
 * missing file, a module that throws while importing, or an export that breaks the contract.
 */
export async function loadEnvDefinition(spec: EnvSpec, baseDir: string): Promise<EnvDefinition<any>> {
  if ((spec.name === undefined) === (spec.module === undefined)) {
    throw new ConfigError('env: set exactly one of env.name (a built-in environment) or env.module (a path to your module)');
  }
  if (spec.name !== undefined) return getBuiltinEnv(spec.name);

  const source = describeEnvSource(spec);
  const path = resolve(baseDir, spec.module as string);
  const context = { module: spec.module, path };
  try {
    const stats = await stat(path);
    if (!stats.isFile()) throw new PluginError(`${source} is not a file: ${path}; point env.module at a .ts or .js module`, { context });
  } catch (err) {
    if (err instanceof PluginError) throw err;
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new PluginError(
      missing
        ? `${source} not found: ${path} does not exist (env.module is resolved relative to ${baseDir}, the config file's folder)`
        : `${source} cannot be read at ${path}: ${errorMessage(err)}`,
      { cause: err, context },
    );
  }

  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginError(
      `${source} failed to load (${path}): ${errorMessage(err)} (the error is in that module or something it imports)`,
      {
        cause: err,
        context,
      },
    );
  }
  return validateEnvDefinition(pickEnvExport(namespace, source), source);
}

/**
 * Check that `candidate` satisfies `EnvDefinition`: `name` (non-empty string), `taskCount` and `create`
 * (functions), and when present `description` (string), `optionsSchema` (a zod schema) and
 * `demonstrations` (function). Throws one PluginError listing every problem.
 */
export function validateEnvDefinition(candidate: unknown, source: string): EnvDefinition<any> {
  if (candidate === null || typeof candidate !== 'object') {
    throw new PluginError(
      `${source} does not satisfy the Env contract: its export is ${describeValue(candidate)}; ` +
        'export an object with `name`, `taskCount` and `create`',
      { context: { source } },
    );
  }
  const def = candidate as Record<string, unknown>;
  // Missing fields first, then mistyped ones: the first thing a plug-in author reads is what to add.
  const missing: string[] = [];
  const mistyped: string[] = [];
  const checkField = (key: string, kind: 'string' | 'function', optional: boolean): void => {
    const value = def[key];
    if (value === undefined) {
      if (!optional) missing.push(`missing \`${key}\` (${kind})`);
    } else if (typeof value !== kind) {
      mistyped.push(`\`${key}\` must be a ${kind} (got ${describeValue(value)})`);
    } else if (kind === 'string' && value === '') {
      mistyped.push(`\`${key}\` must be a non-empty string`);
    }
  };
  checkField('name', 'string', false);
  checkField('description', 'string', true);
  checkField('taskCount', 'function', false);
  checkField('create', 'function', false);
  checkField('demonstrations', 'function', true);
  const schema = def.optionsSchema as { safeParse?: unknown } | undefined;
  if (schema !== undefined && (schema === null || typeof schema.safeParse !== 'function')) {
    mistyped.push(`\`optionsSchema\` must be a zod schema (got ${describeValue(schema)})`);
  }
  const problems = [...missing, ...mistyped];
  if (problems.length > 0) {
    const looksLikeInstance = def.create === undefined && typeof def.step === 'function';
    const hint = looksLikeInstance ? ' (this looks like an Env instance: export a definition whose `create(options)` returns it)' : '';
    throw new PluginError(`${source} does not satisfy the Env contract: ${problems.join(', ')}${hint}`, {
      context: { source, problems },
    });
  }
  return candidate as EnvDefinition<any>;
}

/**
 * `options` parsed by the definition's `optionsSchema` (defaults applied); a definition without a schema
 * gets `options` unchanged. Invalid options are a ConfigError naming each path (`env.options.maxNumber`),
 * the value given, and the valid choices or option names.
 */
export function validateEnvOptions<Options>(def: EnvDefinition<Options>, options: unknown): Options {
  const raw = options ?? {};
  const schema = def.optionsSchema;
  if (schema === undefined) return raw as Options;
  let result: ReturnType<typeof schema.safeParse>;
  try {
    result = schema.safeParse(raw);
  } catch (err) {
    throw new PluginError(
      `env ${def.name}: its optionsSchema threw while parsing env.options: ${errorMessage(err)} (async refinements are not supported)`,
      {
        cause: err,
      },
    );
  }
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => describeIssue(issue as unknown as LooseIssue, schema, raw));
  throw new ConfigError(`invalid env.options for ${def.name}: ${issues.join('; ')}`, {
    context: { env: def.name, issues },
  });
}

/**
 * `env` typed as an Env once `reset`, `step` and `score` are functions on it (and `close`, if present);
 * otherwise a PluginError naming what is missing, e.g. "missing `step`". `source` names the env in the
 * message (see describeEnvSource).
 */
export function checkEnvInstance(env: unknown, source: string): Env {
  if (env === null || typeof env !== 'object') {
    throw new PluginError(
      `${source}: create() returned ${describeValue(env)}; it must return an Env object with reset, step and score methods`,
      { context: { source } },
    );
  }
  const instance = env as Record<string, unknown>;
  const missing: string[] = [];
  const mistyped: string[] = [];
  for (const method of ['reset', 'step', 'score', 'close'] as const) {
    const value = instance[method];
    if (value === undefined) {
      if (method !== 'close') missing.push(`missing \`${method}\``);
    } else if (typeof value !== 'function') {
      mistyped.push(`\`${method}\` must be a function (got ${describeValue(value)})`);
    }
  }
  const problems = [...missing, ...mistyped];
  if (problems.length > 0) {
    const hint = typeof instance.then === 'function' ? ' (it is a Promise: await create(options) before checking it)' : '';
    throw new PluginError(`${source}: create() returned an object that does not satisfy the Env contract: ${problems.join(', ')}${hint}`, {
      context: { source, problems },
    });
  }
  return env as Env;
}

/** The export holding the definition: `default` (unwrapping a CommonJS `exports.default`), else `env`. */
function pickEnvExport(namespace: Record<string, unknown>, source: string): unknown {
  let candidate = namespace.default;
  const wrapped = candidate as { __esModule?: unknown; default?: unknown } | undefined;
  if (wrapped !== null && typeof wrapped === 'object' && wrapped.__esModule === true && wrapped.default !== undefined) {
    candidate = wrapped.default;
  }
  if (candidate !== undefined) return candidate;
  if (namespace.env !== undefined) return namespace.env;
  const found = Object.keys(namespace);
  throw new PluginError(
    `${source} does not satisfy the Env contract: it has no default export and no named \`env\` export ` +
      `(exports found: ${found.length > 0 ? found.join(', ') : 'none'}); add \`export default { name, taskCount, create }\``,
    { context: { source, exports: found } },
  );
}

/** The fields of a zod issue this module reads (zod 3 and 4 share them). */
interface LooseIssue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly keys?: readonly string[];
}

function describeIssue(issue: LooseIssue, schema: unknown, raw: unknown): string {
  const path = ['env', 'options', ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys' && issue.keys !== undefined) {
    const valid = objectKeysAt(schema, issue.path);
    const unknown = issue.keys.map((key) => `\`${key}\``).join(', ');
    return `${path}: unknown option ${unknown}${valid ? `; valid options: ${valid.join(', ')}` : ''}`;
  }
  const value = valueAt(raw, issue.path);
  return value === undefined ? `${path}: ${issue.message}` : `${path}: ${issue.message} (got ${JSON.stringify(value)})`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** Option names of the object schema at `path`, looking through optional/default/pipe wrappers (zod 4). */
function objectKeysAt(schema: unknown, path: readonly PropertyKey[]): string[] | undefined {
  let current = unwrapSchema(schema);
  for (const key of path) {
    const shape = shapeOf(current);
    if (shape === undefined) return undefined;
    current = unwrapSchema(shape[String(key)]);
  }
  const shape = shapeOf(current);
  return shape === undefined ? undefined : Object.keys(shape);
}

interface ZodInternals {
  readonly _zod?: {
    readonly def?: {
      readonly type?: string;
      readonly innerType?: unknown;
      readonly in?: unknown;
      readonly shape?: Record<string, unknown>;
    };
  };
}

function unwrapSchema(schema: unknown): unknown {
  let current = schema;
  for (let depth = 0; depth < 16; depth++) {
    const def = (current as ZodInternals | undefined)?._zod?.def;
    const inner = def?.innerType ?? (def?.type === 'pipe' ? def.in : undefined);
    if (inner === undefined) return current;
    current = inner;
  }
  return current;
}

function shapeOf(schema: unknown): Record<string, unknown> | undefined {
  const shape = (schema as ZodInternals | undefined)?._zod?.def?.shape;
  return shape !== null && typeof shape === 'object' ? shape : undefined;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
