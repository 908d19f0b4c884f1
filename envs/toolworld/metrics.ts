/**
 * Evaluation metrics (spec "Reward"): TGC (task goal completion) = share of tasks whose checks all
 * passed; SGC (scenario goal completion) = share of scenarios whose 3 variants all passed. A task passed
 * when its reward has `parts.passed_all = 1`. Scenarios are tasks ⌊index / 3⌋ of the same split and seed
 * (see tasks.ts); SGC counts only scenarios with all 3 variants among the results (the others are
 * reported as `incompleteScenarios`). Pure: no I/O.
 */
import type { Reward, TaskRef } from '../types.js';
import { toolworldOptionsSchema, type ToolworldOptionsInput } from './options.js';
import { VARIANTS_PER_SCENARIO, locateTask, scenarioKey } from './tasks.js';

/** TGC and SGC of a set of results. */
export interface CompletionRates {
  readonly tasks: number;
  readonly tasksPassed: number;
  /** tasksPassed / tasks (0 when there are no tasks). */
  readonly tgc: number;
  /** Scenarios with all 3 variants present. */
  readonly scenarios: number;
  readonly scenariosPassed: number;
  /** scenariosPassed / scenarios (0 when there are none). */
  readonly sgc: number;
  /** Scenarios with fewer than 3 variants among the results (left out of SGC). */
  readonly incompleteScenarios: number;
}

/** What `toolworldMetrics` returns: overall, per split, per template (TGC only: a template's scenarios are whole). */
export interface ToolworldMetrics extends CompletionRates {
  readonly perSplit: Readonly<Record<string, CompletionRates>>;
  readonly perTemplate: Readonly<Record<string, CompletionRates>>;
}

/** One evaluated task. */
export interface ToolworldResult {
  readonly task: TaskRef;
  readonly reward: Reward;
}

/** Whether a reward is a full pass: `parts.passed_all`, else `total` = 1. */
export function passedAll(reward: Reward): boolean {
  const flag = reward.parts.passed_all;
  return flag !== undefined ? flag === 1 : reward.total >= 1 - 1e-9;
}

function rates(results: readonly ToolworldResult[]): CompletionRates {
  const tasksPassed = results.filter((r) => passedAll(r.reward)).length;
  const byScenario = new Map<string, boolean[]>();
  for (const r of results) {
    const key = scenarioKey(r.task);
    const list = byScenario.get(key) ?? [];
    list.push(passedAll(r.reward));
    byScenario.set(key, list);
  }
  let scenarios = 0;
  let scenariosPassed = 0;
  let incompleteScenarios = 0;
  for (const outcomes of byScenario.values()) {
    if (outcomes.length < VARIANTS_PER_SCENARIO) {
      incompleteScenarios += 1;
      continue;
    }
    scenarios += 1;
    if (outcomes.every(Boolean)) scenariosPassed += 1;
  }
  return {
    tasks: results.length,
    tasksPassed,
    tgc: results.length > 0 ? tasksPassed / results.length : 0,
    scenarios,
    scenariosPassed,
    sgc: scenarios > 0 ? scenariosPassed / scenarios : 0,
    incompleteScenarios,
  };
}

function groupBy(results: readonly ToolworldResult[], key: (r: ToolworldResult) => string): Record<string, CompletionRates> {
  const groups = new Map<string, ToolworldResult[]>();
  for (const r of results) {
    const k = key(r);
    const list = groups.get(k);
    if (list) list.push(r);
    else groups.set(k, [r]);
  }
  return Object.fromEntries([...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, group]) => [k, rates(group)]));
}

/**
 * TGC / SGC of evaluated toolworld tasks, overall and per split and template. `options` are the env
 * options the tasks were generated with (they decide which template a task index maps to); defaults
 * when omitted. A repeated task (same split, seed and index) counts once per occurrence.
 */
export function toolworldMetrics(results: readonly ToolworldResult[], options: ToolworldOptionsInput = {}): ToolworldMetrics {
  const parsed = toolworldOptionsSchema.parse(options);
  const templateOf = (r: ToolworldResult): string => locateTask(r.task, parsed).template.name;
  return { ...rates(results), perSplit: groupBy(results, (r) => r.task.split), perTemplate: groupBy(results, templateOf) };
}
