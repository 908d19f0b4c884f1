/**
 * The solution checker (spec invariants 1 and 5): one function that every mapping — the agent's, the
 * baselines', a user's — passes through before it is costed.
 */
import { programTime } from './program.js';
import type { CompiledProgram, Mapping } from './types.js';

/** Result of {@link checkMapping}. */
export interface MappingCheck {
  /** True iff there are no violations. */
  readonly ok: boolean;
  /** One line per problem, naming the buffers (at most `maxViolations`). */
  readonly violations: readonly string[];
  /** Largest Σ size of fast buffers live at one instruction, bytes. */
  readonly peakFastBytes: number;
  /** Buffers placed in fast memory. */
  readonly fastCount: number;
}

/**
 * Check a mapping against the program: every fast offset is an integer ≥ 0, a multiple of α, and
 * offset + s_b ≤ C_fast; no two fast buffers overlap in both live range and address (half-open
 * intervals); peak fast occupancy ≤ C_fast at every instruction. Negative offsets mean slow memory.
 */
export function checkMapping(program: CompiledProgram, offsets: Mapping, maxViolations = 20): MappingCheck {
  const violations: string[] = [];
  const report = (line: string) => {
    if (violations.length < maxViolations) violations.push(line);
  };
  const n = program.bufferCount;
  if (offsets.length !== n) {
    return {
      ok: false,
      violations: [`mapping has ${offsets.length} entries, the program has ${n} buffers`],
      peakFastBytes: 0,
      fastCount: 0,
    };
  }
  const { size, start, end, capacity, alignment, ids } = program;
  const fast: number[] = [];
  for (let b = 0; b < n; b++) {
    const o = offsets[b];
    if (Number.isNaN(o)) {
      report(`buffer "${ids[b]}": offset is NaN`);
      continue;
    }
    if (o < 0) continue;
    fast.push(b);
    if (!Number.isInteger(o)) report(`buffer "${ids[b]}": offset ${o} is not a whole number of bytes`);
    if (o % alignment !== 0) report(`buffer "${ids[b]}": offset ${o} is not a multiple of the alignment ${alignment}`);
    if (o + size[b] > capacity) report(`buffer "${ids[b]}": [${o}, ${o + size[b]}) exceeds the fast capacity ${capacity}`);
  }

  // Pairwise overlap, sweeping buffers by live-range start: only ranges still open can intersect.
  fast.sort((a, b) => start[a] - start[b] || a - b);
  const open: number[] = [];
  for (const b of fast) {
    for (let j = open.length - 1; j >= 0; j--) if (end[open[j]] <= start[b]) open.splice(j, 1);
    for (const p of open) {
      const lo = Math.max(offsets[p], offsets[b]);
      const hi = Math.min(offsets[p] + size[p], offsets[b] + size[b]);
      if (lo < hi) {
        report(
          `buffers "${ids[p]}" [${offsets[p]}, ${offsets[p] + size[p]}) and "${ids[b]}" [${offsets[b]}, ${offsets[b] + size[b]}) overlap in address while both are live (instructions ${Math.max(start[p], start[b])}..${Math.min(end[p], end[b]) - 1})`,
        );
      }
    }
    open.push(b);
  }

  const delta = new Float64Array(program.instructionCount + 1);
  for (const b of fast) {
    delta[start[b]] += size[b];
    delta[end[b]] -= size[b];
  }
  let live = 0;
  let peakFastBytes = 0;
  for (let i = 0; i < program.instructionCount; i++) {
    live += delta[i];
    if (live > peakFastBytes) peakFastBytes = live;
    if (live > capacity) report(`instruction ${i}: ${live} bytes of fast buffers are live, more than the capacity ${capacity}`);
  }
  return { ok: violations.length === 0, violations, peakFastBytes, fastCount: fast.length };
}

/** A checked and costed mapping. */
export interface EvaluatedMapping {
  /** T(M), time units (NaN when the mapping is invalid). */
  readonly time: number;
  /** (T_allslow − T(M)) / T_allslow, the share of time saved vs all slow (NaN when invalid). */
  readonly saved: number;
  readonly check: MappingCheck;
}

/** Check, then cost with the same model for everyone (invariant 5). */
export function evaluateMapping(program: CompiledProgram, offsets: Mapping): EvaluatedMapping {
  const check = checkMapping(program, offsets);
  if (!check.ok) return { time: Number.NaN, saved: Number.NaN, check };
  const time = programTime(program, offsets);
  return { time, saved: (program.allSlowTime - time) / program.allSlowTime, check };
}
