/**
 * Scoring a mapping against the XLA-like baseline (spec: "Report the terminal comparison against the
 * baseline: speed-up = T_base / T_agent − 1"), and the summary `horizon eval` prints.
 */
import { xlaLikeBaseline, type BaselineSolution } from './baselines.js';
import { evaluateMapping } from './checker.js';
import type { CompiledProgram, Mapping } from './types.js';

/** One program's comparison. Times in time units. */
export interface SpeedupRow {
  readonly program: string;
  readonly buffers: number;
  readonly baselineTime: number;
  readonly agentTime: number;
  /** T_base / T_agent − 1: 0.05 means the agent's mapping runs 5 % faster than the baseline's. */
  readonly speedup: number;
}

/** Mean, median and best speed-up over programs, and the share where the agent is at least as good. */
export interface SpeedupSummary {
  readonly programs: number;
  readonly mean: number;
  readonly median: number;
  readonly best: number;
  /** Share of programs with T_agent ≤ T_base (speed-up ≥ 0), in [0, 1]. */
  readonly atLeastAsGood: number;
}

/**
 * Check and cost the agent's mapping and compare it with the baseline (default: the XLA-like one).
 * An invalid agent mapping throws: a mapping produced by the game is legal by construction, so this is a bug.
 */
export function speedupRow(
  program: CompiledProgram,
  agentOffsets: Mapping,
  baseline: BaselineSolution = xlaLikeBaseline(program),
): SpeedupRow {
  const agent = evaluateMapping(program, agentOffsets);
  if (!agent.check.ok) throw new Error(`the agent's mapping for "${program.name}" is invalid: ${agent.check.violations.join('; ')}`);
  return {
    program: program.name,
    buffers: program.bufferCount,
    baselineTime: baseline.time,
    agentTime: agent.time,
    speedup: baseline.time / agent.time - 1,
  };
}

/** Summary statistics over rows (NaN fields for no rows). */
export function summariseSpeedups(rows: readonly SpeedupRow[]): SpeedupSummary {
  const speedups = rows.map((r) => r.speedup).sort((a, b) => a - b);
  const n = speedups.length;
  if (n === 0) return { programs: 0, mean: Number.NaN, median: Number.NaN, best: Number.NaN, atLeastAsGood: Number.NaN };
  const mean = speedups.reduce((a, b) => a + b, 0) / n;
  const median = n % 2 === 1 ? speedups[(n - 1) / 2] : (speedups[n / 2 - 1] + speedups[n / 2]) / 2;
  // Equal times up to rounding count as "as good".
  const asGood = rows.filter((r) => r.agentTime <= r.baselineTime * (1 + 1e-12)).length;
  return { programs: n, mean, median, best: speedups[n - 1], atLeastAsGood: asGood / n };
}

/** The per-program table and summary as markdown (speed-ups in percent). */
export function formatSpeedupTable(rows: readonly SpeedupRow[], summary: SpeedupSummary = summariseSpeedups(rows)): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} %`;
  const lines = ['| program | buffers | baseline time | agent time | speed-up |', '|---|---:|---:|---:|---:|'];
  for (const r of rows)
    lines.push(`| ${r.program} | ${r.buffers} | ${r.baselineTime.toFixed(1)} | ${r.agentTime.toFixed(1)} | ${pct(r.speedup)} |`);
  lines.push('');
  lines.push(
    `speed-up over ${summary.programs} programs: mean ${pct(summary.mean)}, median ${pct(summary.median)}, best ${pct(summary.best)}; ` +
      `agent at least as good on ${(100 * summary.atLeastAsGood).toFixed(0)} %`,
  );
  return lines.join('\n');
}
