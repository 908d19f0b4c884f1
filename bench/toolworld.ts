/**
 * toolworld environment speed on one core: env steps per second, where a step is what a rollout worker
 * pays per agent turn — parse the message, execute its calls, render the observation. The messages are
 * the scripted solver's own (replayed on fresh envs, so every step does real work: logins, doc lookups,
 * list pages, writes, complete_task), plus a row of malformed messages (parse errors). Episodes are
 * reset before the timer starts; resets and scores are timed separately. Single-threaded: everything
 * runs on the main thread (pin it with `taskset -c 0` to be sure of one core).
 *
 *   npx tsx bench/toolworld.ts [--episodes 400] [--rounds 5] [--json out.json]
 *
 * Target: ≥ 5,000 steps/s.
 */
import os from 'node:os';
import { ToolworldEnv, runSolver } from '../envs/toolworld/env.js';
import { toolworldOptionsSchema, type ToolworldOptions } from '../envs/toolworld/options.js';
import { taskCount } from '../envs/toolworld/tasks.js';
import type { TaskRef } from '../envs/types.js';
import { intFlag, machineInfo, machineLine, markdownTable, parseFlags, percentile, progress, writeJsonIfAsked } from './lib.js';

const USAGE = `npx tsx bench/toolworld.ts [flags]
  --episodes N   tasks per workload (default 400; train split, spread over every template)
  --rounds N     timed repetitions; the table reports the median round (default 5)
  --json FILE    also write the measurements as JSON`;

/** What one workload measures. */
interface Workload {
  readonly name: string;
  readonly options: ToolworldOptions;
  /** Messages of an episode; default: the clean solver's. */
  readonly messages?: (task: TaskRef) => string[];
}

const MALFORMED = [
  'I will delete the note now.',
  'notes.search_notes {"query": milk}',
  'notes.delete_note [3]',
  '{"app": "notes"}',
  '```python\nprint(apis.notes.list_notes())\n```',
  '',
];

const WORKLOADS: Workload[] = [
  { name: 'full world (logins, doc lookups, 5-row pages)', options: toolworldOptionsSchema.parse({}) },
  {
    name: 'compact (tiny world, no logins, no docs)',
    options: toolworldOptionsSchema.parse({ prompt: 'compact', docs: 'off', auth: false, worldSize: 'tiny', reminder: false }),
  },
  { name: 'malformed messages (full world)', options: toolworldOptionsSchema.parse({ maxTurns: 1000 }), messages: () => MALFORMED },
];

/** One workload's numbers (median round). */
interface Row {
  readonly workload: string;
  readonly episodes: number;
  readonly steps: number;
  readonly stepsPerSec: number;
  readonly usPerStepP50: number;
  readonly bytesPerStep: number;
  readonly resetsPerSec: number;
  readonly scoresPerSec: number;
  readonly cpuCores: number;
}

function tasksFor(options: ToolworldOptions, n: number): TaskRef[] {
  const pool = taskCount('train', options);
  const stride = Math.max(1, Math.floor(pool / n));
  return Array.from({ length: n }, (_, i) => ({ split: 'train', index: (i * stride + (i % 3)) % pool, seed: 0 }));
}

function measure(workload: Workload, episodes: number, rounds: number): Row {
  const tasks = tasksFor(workload.options, episodes);
  const scripts = tasks.map((task) =>
    workload.messages
      ? workload.messages(task)
      : runSolver(task, workload.options, { mistake: 0, slip: 0 })
          .demonstration.turns.filter((t) => t.role === 'policy')
          .map((t) => t.text),
  );
  const results: Row[] = [];
  for (let round = 0; round < rounds; round++) {
    const envs = tasks.map(() => new ToolworldEnv(workload.options));
    const resetStart = performance.now();
    tasks.forEach((task, i) => envs[i].reset(task));
    const resetMs = performance.now() - resetStart;
    const stepTimes: number[] = [];
    let steps = 0;
    let bytes = 0;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < envs.length; i++) {
      for (const message of scripts[i]) {
        const t0 = performance.now();
        const { observation, done } = envs[i].step(message);
        stepTimes.push(performance.now() - t0);
        steps += 1;
        bytes += observation.length;
        if (done) break;
      }
    }
    const wallMs = performance.now() - start;
    const cpu = process.cpuUsage(cpuStart);
    const scoreStart = performance.now();
    for (const env of envs) env.score();
    const scoreMs = performance.now() - scoreStart;
    results.push({
      workload: workload.name,
      episodes: envs.length,
      steps,
      stepsPerSec: steps / (wallMs / 1000),
      usPerStepP50: percentile(stepTimes, 50) * 1000,
      bytesPerStep: bytes / steps,
      resetsPerSec: envs.length / (resetMs / 1000),
      scoresPerSec: envs.length / (scoreMs / 1000),
      cpuCores: (cpu.user + cpu.system) / 1000 / wallMs,
    });
  }
  return [...results].sort((a, b) => a.stepsPerSec - b.stepsPerSec)[Math.floor(results.length / 2)];
}

function main(): void {
  const flags = parseFlags(USAGE, { episodes: '400', rounds: '5', json: '' });
  const episodes = intFlag(flags.episodes, 'episodes');
  const rounds = intFlag(flags.rounds, 'rounds');
  const machine = machineInfo('none (no tensors)', os.loadavg()[0]);
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    progress(`${workload.name}: ${episodes} episodes × ${rounds} rounds`);
    rows.push(measure(workload, episodes, rounds));
  }
  process.stdout.write(`${machineLine(machine)}\n`);
  process.stdout.write(
    `${markdownTable(
      ['workload', 'episodes', 'steps', 'steps/s', 'µs/step (p50)', 'observation chars/step', 'resets/s', 'scores/s', 'CPU cores used'],
      rows.map((r) => [
        r.workload,
        r.episodes,
        r.steps,
        Math.round(r.stepsPerSec),
        r.usPerStepP50,
        Math.round(r.bytesPerStep),
        Math.round(r.resetsPerSec),
        Math.round(r.scoresPerSec),
        r.cpuCores,
      ]),
    )}\n`,
  );
  const slowest = Math.min(...rows.map((r) => r.stepsPerSec));
  process.stdout.write(
    `\nTarget ≥ 5,000 steps/s: ${slowest >= 5000 ? 'met' : 'NOT met'} (slowest workload ${Math.round(slowest).toLocaleString('en-US')} steps/s)\n`,
  );
  writeJsonIfAsked(flags.json || undefined, { machine, rows });
}

main();
