/**
 * One place turns a YAML file (plus `--set` overrides) into the frozen run configuration: parse, apply the
 * algorithm preset, validate, compute derived values. Nothing downstream reads raw config or adds defaults.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { builtinEnvNames, isBuiltinEnvName } from '../envs/registry.js';
import { algorithmPresets } from './presets.js';
import { RunConfigSchema, type ParsedRunConfig } from './schema.js';

/** Values computed once from the config; the single source for everything that is not written in it. */
export interface DerivedConfig {
  /** T·K rollouts per iteration. */
  readonly rolloutsPerIteration: number;
  /** Numeric clip bounds of the ratio: lo = 1−ε or 1/(1+ε), hi = 1+ε. */
  readonly clipLow: number;
  readonly clipHigh: number;
  /**
   * Thinking budget of a trace in tokens (contexts `delethink` / `longcot`): C + (I − 1)(C − m). LongCoT
   * generates it in one chunk, so both baselines of a config compare at the same budget.
   */
  readonly thinkingBudget: number;
  /** ceil(perTaskFraction · K): finished rollouts every task needs before stragglers are cancelled. */
  readonly stragglerMinPerTask: number;
  /** Total context cap in tokens (rollout.maxContextTokens or model.maxSeqLen, whichever is smaller). */
  readonly maxContextTokens: number;
  /** Absolute directory of the config file (plug-in modules resolve against it). */
  readonly configDir: string;
}

/** The frozen configuration every component receives. For algorithm `muzero` env.name and env.module are both unset. */
export type ResolvedConfig = Readonly<ParsedRunConfig> & { readonly derived: DerivedConfig };

/** Parse and resolve a config object (already read from YAML). */
export function resolveConfig(raw: unknown, options: { configDir?: string; overrides?: readonly string[] } = {}): ResolvedConfig {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`the config must be a mapping of keys to values, got ${Array.isArray(raw) ? 'a list' : typeof raw}`);
  }
  let input = structuredClone(raw) as Record<string, unknown>;
  for (const override of options.overrides ?? []) input = applyOverride(input, override);
  const algorithm = typeof input.algorithm === 'string' ? input.algorithm : 'loop';
  if (algorithm in algorithmPresets) {
    const preset = algorithmPresets[algorithm as keyof typeof algorithmPresets];
    const userLoop = isRecord(input.loop) ? input.loop : {};
    input.loop = { ...preset, ...userLoop };
  }
  const parsed = RunConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error), { cause: parsed.error });
  const config = parsed.data;
  const eps = config.loop.clipEpsilon;
  const derived: DerivedConfig = {
    rolloutsPerIteration: config.rollout.tasksPerIteration * config.rollout.groupSize,
    clipLow: config.loop.clipLow === 'paper' ? 1 - eps : 1 / (1 + eps),
    clipHigh: 1 + (config.loop.clipHighEpsilon ?? eps),
    thinkingBudget: thinkingBudget(config.delethink),
    stragglerMinPerTask: Math.ceil(config.rollout.stragglerStop.perTaskFraction * config.rollout.groupSize),
    maxContextTokens: Math.min(config.rollout.maxContextTokens ?? config.model.maxSeqLen, config.model.maxSeqLen),
    configDir: path.resolve(options.configDir ?? process.cwd()),
  };
  checkEnv(config, input.env !== undefined);
  if (config.model.nKvHeads !== undefined && config.model.nHeads % config.model.nKvHeads !== 0) {
    throw new ConfigError(`model.nKvHeads (${config.model.nKvHeads}) must divide model.nHeads (${config.model.nHeads})`);
  }
  if (config.model.dModel % config.model.nHeads !== 0) {
    throw new ConfigError(`model.dModel (${config.model.dModel}) must be a multiple of model.nHeads (${config.model.nHeads})`);
  }
  checkContext(config, derived);
  if (config.algorithm === 'muzero') checkMuZero(config);
  return deepFreeze({ ...config, derived });
}

/** ℓ_max = C + (I − 1)(C − m) (docs/delethink.md, "Tracing"): 24,576 for (8192, 4096, 5). */
export function thinkingBudget(d: { chunkTokens: number; carryoverTokens: number; maxChunks: number }): number {
  return d.chunkTokens + (d.maxChunks - 1) * (d.chunkTokens - d.carryoverTokens);
}

/** The recipe presets that only make sense with one context policy. */
const CONTEXT_OF_ALGORITHM: Partial<Record<string, ParsedRunConfig['rollout']['context']>> = {
  delethink: 'delethink',
  longcot: 'longcot',
  memalpha: 'fresh',
};

/**
 * Token-policy algorithms play an environment: exactly one of env.name / env.module. `muzero` plays the
 * malloc game configured under `muzero.*` and reads no env section (its resolved env names nothing).
 * `given`: whether the config wrote an env section at all.
 */
function checkEnv(config: ParsedRunConfig, given: boolean): void {
  const env = config.env;
  if (config.algorithm === 'muzero') {
    if (env.name !== undefined || env.module !== undefined || Object.keys(env.options).length > 0) {
      throw new ConfigError(
        `env: algorithm muzero plays the malloc game configured under muzero.game and muzero.programs and reads no env section; remove env (it sets ${env.name ?? env.module ?? 'options'})`,
      );
    }
    return;
  }
  if (!given) {
    throw new ConfigError(
      `env: algorithm ${config.algorithm} trains a token policy on an environment: set env.name (a built-in environment: ${builtinEnvNames.join(', ')}) or env.module (a path to your module)`,
    );
  }
  if ((env.name === undefined) === (env.module === undefined)) {
    throw new ConfigError('env: set exactly one of env.name (a built-in environment) or env.module (a path to your module)');
  }
  if (env.name !== undefined && !isBuiltinEnvName(env.name)) {
    throw new ConfigError(
      `env.name: unknown environment "${env.name}"; built-in environments: ${builtinEnvNames.join(', ')} (or set env.module to your own module)`,
    );
  }
}

/** What the `muzero` section must satisfy beyond its schema. */
function checkMuZero(config: ParsedRunConfig): void {
  const m = config.muzero;
  if (m.programs.generate.length === 0 && m.programs.files.length === 0) {
    throw new ConfigError(
      'muzero.programs: no training programs; list generators under muzero.programs.generate or files under muzero.programs.files',
    );
  }
  if (m.learner.minReplayPositions > m.replay.capacity) {
    throw new ConfigError(
      `muzero.learner.minReplayPositions (${m.learner.minReplayPositions}) exceeds muzero.replay.capacity (${m.replay.capacity}); the learner would wait forever`,
    );
  }
  if (config.sft.steps > 0)
    throw new ConfigError(
      `sft.steps = ${config.sft.steps}: the supervised warm start is for token policies; algorithm muzero learns from self-play only (set sft.steps: 0)`,
    );
}

function checkContext(config: ParsedRunConfig, derived: DerivedConfig): void {
  const context = config.rollout.context;
  const wanted = CONTEXT_OF_ALGORITHM[config.algorithm];
  if (wanted !== undefined && wanted !== context) {
    throw new ConfigError(
      `algorithm: ${config.algorithm} trains with rollout.context: ${wanted}, but the config sets rollout.context: ${context}`,
    );
  }
  const d = config.delethink;
  const seq = config.model.maxSeqLen;
  if (context === 'delethink') {
    // A chunk's context is BOS + query + head + carry + response; the response alone can be C tokens.
    const carry = d.carry === 'paper' ? d.carryoverTokens : d.carryoverTokens - d.headTokens;
    const longest = Math.max(d.chunkTokens, d.headTokens + carry + d.chunkTokens - d.carryoverTokens);
    if (longest + 1 >= seq) {
      throw new ConfigError(
        `model.maxSeqLen (${seq}) leaves no room for the query: a delethink chunk needs up to ${longest} tokens of head, carryover and response (delethink.chunkTokens ${d.chunkTokens}); raise model.maxSeqLen or lower the chunk size`,
      );
    }
  }
  if (context === 'longcot' && derived.thinkingBudget + 1 >= seq) {
    throw new ConfigError(
      `model.maxSeqLen (${seq}) must exceed the LongCoT thinking budget ${derived.thinkingBudget} (= C + (I − 1)(C − m) of the delethink section) plus the query`,
    );
  }
}

/** Read a YAML config file, apply `--set` overrides and resolve it. */
export function loadConfigFile(file: string, overrides: readonly string[] = []): ResolvedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return resolveConfig(parseYamlText(text, file), { configDir: path.dirname(path.resolve(file)), overrides });
}

/** Parse YAML with an error that names the file, line and column. */
export function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
      throw new ConfigError(`malformed YAML at ${where}: ${err.message.split('\n')[0]}`, { cause: err });
    }
    throw new ConfigError(`malformed YAML in ${source}: ${String(err)}`, { cause: err });
  }
}

/** Apply one `a.b.c=value` override; the value is read as YAML (numbers, booleans, lists work). */
export function applyOverride(config: Record<string, unknown>, override: string): Record<string, unknown> {
  const eq = override.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set expects key.path=value, got "${override}"`);
  const keyPath = override.slice(0, eq).trim().split('.');
  if (keyPath.some((k) => k === '')) throw new ConfigError(`--set has an empty key in "${override}"`);
  const value = parseYamlText(override.slice(eq + 1), `--set ${override}`);
  const out = structuredClone(config);
  let node: Record<string, unknown> = out;
  for (const key of keyPath.slice(0, -1)) {
    if (!isRecord(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keyPath[keyPath.length - 1]] = value;
  return out;
}

/** One line per problem, each naming the field path and, for enums, the valid choices. */
export function formatZodError(error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    switch (issue.code) {
      case 'unrecognized_keys':
        return `${joinPath(where, issue.keys.length === 1 ? issue.keys[0] : '')}: unknown key${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}${suggestKeys(issue.path, issue.keys)}`;
      case 'invalid_value':
        return `${where}: invalid value; expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      default:
        return `${where}: ${issue.message}`;
    }
  });
  return `invalid config:\n  ${lines.join('\n  ')}`;
}

function joinPath(where: string, key: string): string {
  if (!key) return where;
  return where === '(top level)' ? key : `${where}.${key}`;
}

function suggestKeys(at: readonly PropertyKey[], _keys: readonly string[]): string {
  const shape = shapeAt(at);
  return shape ? ` (valid keys: ${Object.keys(shape).join(', ')})` : '';
}

function shapeAt(at: readonly PropertyKey[]): Record<string, unknown> | undefined {
  let schema: unknown = RunConfigSchema;
  for (const key of at) {
    const shape = objectShape(schema);
    if (!shape) return undefined;
    schema = shape[String(key)];
  }
  return objectShape(schema);
}

function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let s = schema as { shape?: Record<string, unknown>; def?: { innerType?: unknown; in?: unknown; schema?: unknown } } | undefined;
  for (let i = 0; i < 6 && s; i++) {
    if (s.shape) return s.shape;
    s = (s.def?.innerType ?? s.def?.in ?? s.def?.schema) as typeof s;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
