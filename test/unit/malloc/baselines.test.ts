/** Checker, baselines and the speed-up summary: hand-computed values and properties (invariant 5). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bestFitReference, exactGameOptimum, greedyMapping, referenceOrder, xlaLikeBaseline } from '../../../envs/malloc/baselines.js';
import { checkMapping, evaluateMapping } from '../../../envs/malloc/checker.js';
import { formatSpeedupTable, speedupRow, summariseSpeedups, type SpeedupRow } from '../../../envs/malloc/evaluate.js';
import { MallocGame } from '../../../envs/malloc/game.js';
import { loadProgramFile } from '../../../envs/malloc/loaders.js';
import { compileProgram, programTime } from '../../../envs/malloc/program.js';
import { SLOW } from '../../../envs/malloc/types.js';
import { choicesArbitrary, compiledArbitrary, pickLegal } from './arbitraries.js';

const example = loadProgramFile('examples/data/malloc-program.json').compiled;

describe('checkMapping', () => {
  const program = compileProgram({
    name: 'check',
    memory: { fastCapacity: 16, alignment: 4, fastBandwidth: 2, slowBandwidth: 1 },
    buffers: [
      { id: 'x', size: 8, start: 0, end: 2 },
      { id: 'y', size: 4, start: 1, end: 3 },
      { id: 'z', size: 6, start: 2, end: 3 }, // aligned size 8
    ],
    instructions: [0, 1, 2].map(() => ({ computeTime: 1, accesses: [] })),
  });

  it('accepts a legal mapping and reports peak occupancy', () => {
    const check = checkMapping(program, [0, 8, 0]);
    expect(check).toEqual({ ok: true, violations: [], peakFastBytes: 12, fastCount: 3 });
  });

  it('names overlapping buffers, misalignment, out-of-bounds, bad length and NaN', () => {
    expect(checkMapping(program, [0, 4, SLOW]).violations[0]).toMatch(/"x" \[0, 8\) and "y" \[4, 8\) overlap .*instructions 1\.\.1/);
    expect(checkMapping(program, [2, SLOW, SLOW]).violations[0]).toMatch(/offset 2 is not a multiple of the alignment 4/);
    expect(checkMapping(program, [SLOW, SLOW, 12]).violations[0]).toMatch(/\[12, 20\) exceeds the fast capacity 16/);
    expect(checkMapping(program, [0, 0]).violations[0]).toMatch(/2 entries, the program has 3/);
    expect(checkMapping(program, [Number.NaN, SLOW, SLOW]).ok).toBe(false);
    // Buffers that meet only at a boundary of their half-open live ranges may share addresses.
    expect(checkMapping(program, [0, 8, 0]).ok).toBe(true);
  });

  it('evaluateMapping costs only valid mappings', () => {
    expect(evaluateMapping(program, [0, 4, SLOW]).time).toBeNaN();
    const ok = evaluateMapping(program, [0, 8, 0]);
    expect(ok.time).toBe(programTime(program, [0, 8, 0]));
  });
});

describe('baselines on the hand-computed example', () => {
  it('XLA-like: density order b (1.5), c (1.125), a (0.75) → b at 0, c does not fit, a at 4: T = 15', () => {
    expect(Array.from(referenceOrder(example, 'benefit-density'))).toEqual([1, 2, 0]);
    const base = xlaLikeBaseline(example);
    expect(Array.from(base.offsets)).toEqual([4, 0, SLOW]);
    expect(base.time).toBe(15);
    expect(base.saved).toBeCloseTo(9 / 24, 15);
  });

  it('the reference finds T = 12 (benefit order: c at 0, b slow, a at 0)', () => {
    const reference = bestFitReference(example);
    expect(reference.time).toBe(12);
    expect(checkMapping(example, reference.offsets).ok).toBe(true);
  });

  it('the exact game optimum is T = 12 via PLACE, SLOW, PLACE', () => {
    const optimum = exactGameOptimum(example);
    expect(optimum.optimal).toBe(true);
    expect(optimum.time).toBe(12);
    expect(Array.from(optimum.actions)).toEqual([0, 4, 0]); // K = n + 1 = 4 candidates, SLOW = 4
  });

  it('speed-up = T_base / T_agent − 1 and the summary statistics', () => {
    const row = speedupRow(example, [0, SLOW, 0]);
    expect(row).toEqual({ program: 'two-instruction-example', buffers: 3, baselineTime: 15, agentTime: 12, speedup: 0.25 });
    expect(() => speedupRow(example, [0, 0, 0])).toThrow(/invalid/);
    const rows: SpeedupRow[] = [0.25, -0.1, 0, 0.05].map((speedup, i) => ({
      program: `p${i}`,
      buffers: 1,
      baselineTime: 1 + speedup,
      agentTime: 1,
      speedup,
    }));
    const summary = summariseSpeedups(rows);
    expect(summary.programs).toBe(4);
    expect(summary.mean).toBeCloseTo(0.05, 12);
    expect(summary.median).toBeCloseTo(0.025, 12);
    expect(summary.best).toBe(0.25);
    expect(summary.atLeastAsGood).toBe(0.75);
    const table = formatSpeedupTable(rows, summary);
    expect(table).toContain('| p0 | 1 | 1.3 | 1.0 | +25.00 % |');
    expect(table).toContain('mean +5.00 %, median +2.50 %, best +25.00 %; agent at least as good on 75 %');
  });
});

describe('baselines (property tests)', () => {
  it('every baseline mapping passes the checker and is costed by programTime (invariant 5)', () => {
    fc.assert(
      fc.property(compiledArbitrary, (program) => {
        for (const solution of [xlaLikeBaseline(program), bestFitReference(program)]) {
          expect(checkMapping(program, solution.offsets).violations).toEqual([]);
          expect(solution.time).toBe(programTime(program, solution.offsets));
        }
        expect(bestFitReference(program).time).toBeLessThanOrEqual(xlaLikeBaseline(program).time);
        for (const rule of ['first-fit', 'best-fit'] as const) {
          expect(checkMapping(program, greedyMapping(program, referenceOrder(program, 'size'), rule)).ok).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('no play of the game beats the exact game optimum', () => {
    fc.assert(
      fc.property(compiledArbitrary, choicesArbitrary, (program, choices) => {
        const optimum = exactGameOptimum(program);
        expect(optimum.optimal).toBe(true);
        expect(checkMapping(program, optimum.offsets).ok).toBe(true);
        const game = new MallocGame(program, { candidates: 2 });
        for (let k = 0; !game.done; k++) game.step(pickLegal(game.legalMask(), choices[k % choices.length]));
        // Up to rounding: two mappings with equal exact times may differ in the last bit.
        expect(optimum.time).toBeLessThanOrEqual(game.totalTime + 1e-12 * program.allSlowTime);
      }),
      { numRuns: 100 },
    );
  });
});
