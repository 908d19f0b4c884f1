/**
 * The programs a MuZero run plays: the training set of `muzero.programs` (generated workloads and files),
 * as refs that travel in self-play jobs (rollout/protocol.ts, ProgramRef), and evaluation sets (the
 * committed held-out set, users' .json / MiniMalloc .csv files and directories of them).
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../core/errors.js';
import type { ResolvedConfig } from '../../configs/resolve.js';
import { xlaLikeBaseline } from '../../envs/malloc/baselines.js';
import { loadHeldoutSet } from '../../envs/malloc/heldout.js';
import { loadProgramFile } from '../../envs/malloc/loaders.js';
import type { CompiledProgram } from '../../envs/malloc/types.js';
import { loadProgramRef, type ProgramRef } from '../../rollout/protocol.js';
import type { SelfPlayProgram } from '../../rollout/selfplay.js';

/** Extensions of program files: a JSON program or a MiniMalloc CSV. */
const PROGRAM_EXTENSIONS = new Set(['.json', '.csv']);

/**
 * Files a list of paths names: a file as is, a directory as every .json and .csv file in it (sorted, not
 * recursive), except `manifest.json` (the held-out set's index). Relative paths resolve against `baseDir`.
 * Throws ConfigError for a missing path or a directory without programs.
 */
export function expandProgramPaths(paths: readonly string[], baseDir: string): string[] {
  const out: string[] = [];
  for (const given of paths) {
    const full = path.resolve(baseDir, given);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(full).isDirectory();
    } catch (err) {
      throw new ConfigError(`program path ${given} does not exist (looked at ${full})`, { cause: err });
    }
    if (!isDirectory) {
      out.push(full);
      continue;
    }
    const files = readdirSync(full)
      .filter((name) => PROGRAM_EXTENSIONS.has(path.extname(name).toLowerCase()) && name !== 'manifest.json')
      .sort()
      .map((name) => path.join(full, name));
    if (files.length === 0) throw new ConfigError(`program directory ${given} holds no .json or .csv program files`);
    out.push(...files);
  }
  return out;
}

/**
 * The training programs of a muzero config, as refs: every `programs.generate` entry expands to `count`
 * workloads with seeds seed, seed + 1, … (id `<generator>-s<seed>`), every `programs.files` path to its
 * files (id: the path relative to the config directory). Ids are unique (ConfigError otherwise).
 */
export function trainingProgramRefs(config: ResolvedConfig): ProgramRef[] {
  const { programs } = config.muzero;
  const configDir = config.derived.configDir;
  const refs: ProgramRef[] = [];
  const madeBy = new Map<string, string>();
  const add = (ref: ProgramRef, where: string) => {
    const previous = madeBy.get(ref.id);
    if (previous !== undefined) {
      throw new ConfigError(
        `${where} makes program ${ref.id}, which ${previous} makes too; give generate entries different seed ranges (workload.seed) and list each file once`,
      );
    }
    madeBy.set(ref.id, where);
    refs.push(ref);
  };
  programs.generate.forEach((entry, e) => {
    for (let k = 0; k < entry.count; k++) {
      const workload = { ...entry.workload, seed: entry.workload.seed + k };
      add({ id: `${workload.generator}-s${workload.seed}`, workload }, `muzero.programs.generate[${e}]`);
    }
  });
  for (const file of expandProgramPaths(programs.files, configDir)) {
    const relative = path.relative(configDir, file).split(path.sep).join('/');
    add({ id: relative, file: relative, csvCapacityFraction: programs.csvCapacityFraction }, `muzero.programs.files (${relative})`);
  }
  return refs;
}

/** A training program as the learner holds it: the ref workers get, the compiled program and its baseline time. */
export interface TrainingProgram {
  readonly ref: ProgramRef;
  readonly program: CompiledProgram;
  /** T of the XLA-like baseline's mapping, time units. */
  readonly baselineTime: number;
}

/** Compile every training program of the config (the same way workers do) with its baseline time. */
export function loadTrainingPrograms(config: ResolvedConfig): TrainingProgram[] {
  return trainingProgramRefs(config).map((ref) => {
    const program = loadProgramRef(ref, config.derived.configDir);
    return { ref, program, baselineTime: xlaLikeBaseline(program).time };
  });
}

/**
 * Evaluation programs: the committed held-out set (when `heldout`), then `files` (files or directories,
 * relative to `baseDir`; CSV capacity `csvCapacityFraction` of the peak live bytes), the first
 * `maxPrograms` of them (0 = all). Ids are the program names (file name when a file's program has none).
 */
export function loadEvalPrograms(options: {
  readonly heldout: boolean;
  readonly files: readonly string[];
  readonly baseDir: string;
  readonly csvCapacityFraction: number;
  readonly maxPrograms?: number;
}): SelfPlayProgram[] {
  const programs: SelfPlayProgram[] = [];
  if (options.heldout) for (const { name, compiled } of loadHeldoutSet()) programs.push({ id: name, program: compiled });
  for (const file of expandProgramPaths(options.files, options.baseDir)) {
    const { compiled } = loadProgramFile(file, { capacityFraction: options.csvCapacityFraction });
    programs.push({ id: compiled.name || path.basename(file, path.extname(file)), program: compiled });
  }
  if (programs.length === 0) throw new ConfigError('no evaluation programs: enable the held-out set or give program files');
  return options.maxPrograms ? programs.slice(0, options.maxPrograms) : programs;
}
