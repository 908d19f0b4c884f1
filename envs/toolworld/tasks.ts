/**
 * Splits, scenarios and task generation (spec "Shape"). Task index → scenario mapping (deterministic,
 * documented in docs/toolworld.md):
 *
 *   scenario = ⌊index / 3⌋, variant = index mod 3,
 *   template = pool[scenario mod |pool|]   (pool: the split's templates in catalogue order),
 *
 * so the three variants of a scenario are consecutive indices and share a template; each variant has
 * its own world, seeded by (split, scenario, TaskRef.seed, variant). `train`, `dev` and `test-normal`
 * draw from the normal templates (different seeds per split); `test-challenge` from the challenge
 * templates (an app no normal template uses, and app compositions no normal template has).
 */
import { ConfigError, EnvError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import type { TaskRef } from '../types.js';
import { expectedChanges, type TaskExpectation } from './checks.js';
import type { ToolworldOptions } from './options.js';
import { TEMPLATES, TEMPLATES_BY_NAME, type TaskDraft, type TaskTemplate } from './templates/index.js';
import { cloneWorld, generateWorld, type World } from './world.js';

/** The splits toolworld has. */
export const SPLITS = ['train', 'dev', 'test-normal', 'test-challenge'] as const;

/** A toolworld split name. */
export type Split = (typeof SPLITS)[number];

/** Tasks per scenario. */
export const VARIANTS_PER_SCENARIO = 3;

/** Redraws of a variant's world before giving up (a template may decline a world). */
const MAX_ATTEMPTS = 50;

function isSplit(split: string): split is Split {
  return (SPLITS as readonly string[]).includes(split);
}

/** The templates a split draws from after the options' filters, in catalogue order. */
export function templatePool(split: string, options: ToolworldOptions): TaskTemplate[] {
  if (!isSplit(split)) return [];
  const challenge = split === 'test-challenge';
  const named = challenge ? options.challengeTemplates : options.templates;
  const base =
    named !== undefined
      ? named.map((name) => TEMPLATES_BY_NAME.get(name)!)
      : TEMPLATES.filter((t) => t.group === (challenge ? 'challenge' : 'normal'));
  const apps = options.apps === undefined ? undefined : new Set(options.apps);
  return base.filter((t) => options.levels.includes(t.level) && (apps === undefined || t.apps.every((a) => apps.has(a))));
}

/** Tasks in a split: 3 × scenarios, or 0 when the split is unknown or has no templates left. */
export function taskCount(split: string, options: ToolworldOptions): number {
  if (!isSplit(split) || templatePool(split, options).length === 0) return 0;
  return VARIANTS_PER_SCENARIO * options.scenarios[split];
}

/** Where a task sits: its scenario, variant and template. */
export interface TaskLocation {
  readonly split: Split;
  readonly scenario: number;
  readonly variant: number;
  readonly template: TaskTemplate;
}

/** FNV-1a of the split name, so splits have separate seed spaces. */
function splitHash(split: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < split.length; i++) {
    h ^= split.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Scenario, variant and template of a task (a ConfigError for a task outside its split). */
export function locateTask(task: TaskRef, options: ToolworldOptions): TaskLocation {
  const count = taskCount(task.split, options);
  if (count === 0) {
    throw new ConfigError(
      `toolworld has no tasks in split '${task.split}' with these options; splits: ${SPLITS.map((s) => `${s} (${taskCount(s, options)} tasks)`).join(', ')}`,
    );
  }
  if (!Number.isInteger(task.index) || task.index < 0 || task.index >= count) {
    throw new ConfigError(`toolworld: task index ${task.index} is outside split '${task.split}' (0..${count - 1})`);
  }
  const pool = templatePool(task.split, options);
  const scenario = Math.floor(task.index / VARIANTS_PER_SCENARIO);
  return { split: task.split as Split, scenario, variant: task.index % VARIANTS_PER_SCENARIO, template: pool[scenario % pool.length] };
}

/** Scenario key for SGC: tasks with the same key are the variants of one scenario. */
export function scenarioKey(task: TaskRef): string {
  return `${task.split}/${task.seed}/${Math.floor(task.index / VARIANTS_PER_SCENARIO)}`;
}

/** A generated task: its place, initial world, draft and checks. */
export interface GeneratedTask {
  readonly location: TaskLocation;
  /** The world the episode starts in; never changed (the episode works on a copy). */
  readonly initial: World;
  readonly draft: TaskDraft;
  readonly expectation: TaskExpectation;
  /** Seed of everything random about this task besides the world (the solver's noise). */
  readonly seed: number;
}

/**
 * The task behind a TaskRef. The world and the draft come from a seed derived from (split, scenario,
 * variant, TaskRef.seed); when the template declines a world, the next attempt's seed is used.
 */
export function generateTask(task: TaskRef, options: ToolworldOptions): GeneratedTask {
  const location = locateTask(task, options);
  const scenarioSeed = mixSeed(splitHash(task.split), location.scenario, task.seed, 0x7001);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const seed = mixSeed(scenarioSeed, location.variant, attempt);
    const world = generateWorld(seed, options.worldSize);
    const draft = location.template.make(world, new Rng(mixSeed(seed, 1)));
    if (draft === undefined) continue;
    const expected = cloneWorld(world);
    draft.apply?.(expected);
    const changes = expectedChanges(world, expected);
    if (changes.length === 0 && draft.answer === undefined) {
      throw new EnvError(
        `toolworld template ${location.template.name} produced a task with nothing to check (${task.split}#${task.index})`,
      );
    }
    const expectation: TaskExpectation = draft.answer === undefined ? { changes } : { changes, answer: draft.answer };
    return { location, initial: world, draft, expectation, seed };
  }
  throw new EnvError(
    `toolworld template ${location.template.name} found no suitable world in ${MAX_ATTEMPTS} attempts (${task.split}#${task.index})`,
  );
}
