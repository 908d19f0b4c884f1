/**
 * mallocGame invariants (spec "Invariants tests should hold", 1–6) as property tests over random
 * programs and random legal plays, plus a hand-computed example.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkMapping } from '../../../envs/malloc/checker.js';
import {
  MallocGame,
  episodeObservations,
  observationLayout,
  replayActions,
  resolveGameOptions,
  type MallocGameOptions,
} from '../../../envs/malloc/game.js';
import { loadProgramFile } from '../../../envs/malloc/loaders.js';
import { compileProgram, programTime } from '../../../envs/malloc/program.js';
import { SLOW, type CompiledProgram } from '../../../envs/malloc/types.js';
import { choicesArbitrary, compiledArbitrary, pickLegal } from './arbitraries.js';

const EXAMPLE = 'examples/data/malloc-program.json';

/** Play the game choosing legal actions by `choices`; record everything the invariants talk about. */
function play(program: CompiledProgram, options: Partial<MallocGameOptions>, choices: number[]) {
  const game = new MallocGame(program, options);
  const actions: number[] = [];
  const rewards: number[] = [];
  const decided: number[] = [];
  const slowAlwaysLegal: boolean[] = [];
  for (let k = 0; !game.done; k++) {
    const mask = game.legalMask();
    slowAlwaysLegal.push(mask[game.slowAction] === 1);
    decided.push(game.currentBuffer);
    const action = pickLegal(mask, choices[k % choices.length] + k);
    actions.push(action);
    rewards.push(game.step(action));
  }
  return { game, actions, rewards, decided, slowAlwaysLegal };
}

const actionSpaces: Array<Partial<MallocGameOptions>> = [
  { actionSpace: 'canonical', candidates: 3 },
  { actionSpace: 'grid', candidates: 5 },
];

describe('mallocGame invariants (property tests)', () => {
  for (const options of actionSpaces) {
    it(`${options.actionSpace}: the final mapping passes the checker — no overlap, in bounds, aligned, peak ≤ C (invariant 1)`, () => {
      fc.assert(
        fc.property(compiledArbitrary, choicesArbitrary, (program, choices) => {
          const { game } = play(program, options, choices);
          const check = checkMapping(program, game.mapping());
          expect(check.violations).toEqual([]);
          expect(check.peakFastBytes).toBeLessThanOrEqual(program.capacity);
          const offsets = game.mapping();
          for (let b = 0; b < program.bufferCount; b++) {
            if (offsets[b] === SLOW) continue;
            expect(offsets[b] % program.alignment).toBe(0);
            expect(offsets[b] + program.size[b]).toBeLessThanOrEqual(program.capacity);
          }
        }),
        { numRuns: 150 },
      );
    });

    it(`${options.actionSpace}: SLOW is always legal; each buffer is decided exactly once, in the configured order (invariants 2, 3)`, () => {
      fc.assert(
        fc.property(compiledArbitrary, choicesArbitrary, (program, choices) => {
          const { game, decided, slowAlwaysLegal } = play(program, options, choices);
          expect(slowAlwaysLegal.every(Boolean)).toBe(true);
          expect(decided.length).toBe(program.bufferCount);
          expect(decided).toEqual(Array.from(game.order));
          expect([...decided].sort((a, b) => a - b)).toEqual(Array.from({ length: program.bufferCount }, (_, b) => b));
        }),
        { numRuns: 100 },
      );
    });

    it(`${options.actionSpace}: rewards ≥ 0 and the return is the share of time saved, in [0, 1) (invariant 4)`, () => {
      fc.assert(
        fc.property(compiledArbitrary, choicesArbitrary, (program, choices) => {
          const { game, rewards } = play(program, options, choices);
          for (const r of rewards) expect(r).toBeGreaterThanOrEqual(0);
          const final = programTime(program, game.mapping());
          expect(game.totalTime).toBe(final);
          const expected = (program.allSlowTime - final) / program.allSlowTime;
          const sum = rewards.reduce((a, b) => a + b, 0);
          expect(Math.abs(sum - expected)).toBeLessThanOrEqual(1e-12);
          expect(expected).toBeGreaterThanOrEqual(0);
          expect(expected).toBeLessThan(1);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('moving one buffer from slow to fast never increases T, for any mapping (invariant 4, cost model)', () => {
    fc.assert(
      fc.property(compiledArbitrary, fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }), fc.nat(), (program, fastFlags, pick) => {
        const offsets = Array.from({ length: program.bufferCount }, (_, b) => (fastFlags[b] ? 0 : SLOW));
        const slow = offsets.map((o, b) => (o === SLOW ? b : -1)).filter((b) => b >= 0);
        if (slow.length === 0) return;
        const moved = [...offsets];
        moved[slow[pick % slow.length]] = 0;
        expect(programTime(program, moved)).toBeLessThanOrEqual(programTime(program, offsets));
      }),
      { numRuns: 300 },
    );
  });

  it('replaying an action sequence reproduces rewards, mapping and time bit for bit (invariant 6)', () => {
    fc.assert(
      fc.property(compiledArbitrary, choicesArbitrary, fc.constantFrom(...actionSpaces), (program, choices, options) => {
        const first = play(program, options, choices);
        const again = replayActions(program, options, first.actions);
        expect(Array.from(again.rewards)).toEqual(first.rewards);
        expect(again.game.mapping()).toEqual(first.game.mapping());
        expect(Object.is(again.game.totalTime, first.game.totalTime)).toBe(true);
        expect(Object.is(again.game.returnSoFar, first.game.returnSoFar)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('clone() is independent: stepping the original leaves the clone unchanged and vice versa (invariant 6)', () => {
    fc.assert(
      fc.property(compiledArbitrary, choicesArbitrary, (program, choices) => {
        const game = new MallocGame(program, { candidates: 3 });
        const half = Math.floor(program.bufferCount / 2);
        for (let k = 0; k < half; k++) game.step(pickLegal(game.legalMask(), choices[k]));
        const copy = game.clone();
        const snapshot = () => {
          const obs = new Float32Array(copy.observationSize);
          copy.observe(obs);
          return {
            obs: Array.from(obs),
            mask: Array.from(copy.legalMask()),
            mapping: Array.from(copy.mapping()),
            time: copy.totalTime,
            k: copy.stepIndex,
          };
        };
        const before = snapshot();
        while (!game.done) game.step(pickLegal(game.legalMask(), 0));
        expect(snapshot()).toEqual(before);
        // The other direction: finishing the clone with SLOW does not touch the (finished) original.
        const originalMapping = game.mapping();
        while (!copy.done) copy.step(copy.slowAction);
        expect(game.mapping()).toEqual(originalMapping);
      }),
      { numRuns: 100 },
    );
  });

  it('observations have the documented size, are finite and in [0, 1], and mark exactly the legal candidates', () => {
    fc.assert(
      fc.property(compiledArbitrary, choicesArbitrary, fc.constantFrom(...actionSpaces), (program, choices, options) => {
        const game = new MallocGame(program, options);
        const layout = observationLayout(resolveGameOptions(options));
        expect(game.observationSize).toBe(layout.size);
        const obs = new Float32Array(layout.size);
        for (let k = 0; !game.done; k++) {
          game.observe(obs);
          for (const x of obs) {
            expect(Number.isFinite(x)).toBe(true);
            expect(x).toBeGreaterThanOrEqual(0);
            expect(x).toBeLessThanOrEqual(1 + 1e-6);
          }
          const mask = game.legalMask();
          for (let a = 0; a < game.slowAction; a++) expect(obs[layout.candidates.offset + 4 * a + 3]).toBe(mask[a]);
          game.step(pickLegal(mask, choices[k % choices.length]));
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('mallocGame on a hand-computed program (examples/data/malloc-program.json)', () => {
  // a [0,1) 4 B, b [0,2) 4 B, c [1,2) 8 B (accessed with 12 B); C = 8, α = 4, BW_slow 1, BW_fast 4.
  // All slow: τ0 = max(0, 4 + 4) = 8, τ1 = max(5, 4 + 12) = 16, T = 24.
  const program = loadProgramFile(EXAMPLE).compiled;

  it('derives live ranges, all-slow time and benefits', () => {
    expect(Array.from(program.start)).toEqual([0, 0, 1]);
    expect(Array.from(program.end)).toEqual([1, 2, 2]);
    expect(program.allSlowTime).toBe(24);
    // β_a = 8 − (8 − 4·¾) = 3; β_b = 3 + 3; β_c = 16 − max(5, 16 − 12·¾) = 9.
    expect(Array.from(program.benefit)).toEqual([3, 6, 9]);
    expect(program.peakLiveBytes).toBe(12);
  });

  it('offers the canonical candidates, rewards the time saved, and leaves only SLOW when nothing fits', () => {
    const game = new MallocGame(program, { candidates: 2 });
    expect(Array.from(game.order)).toEqual([0, 1, 2]); // start ascending, then larger first, then index
    expect(Array.from(game.legalMask())).toEqual([1, 0, 1]);
    expect(game.actionOffset(0)).toBe(0);
    expect(game.step(0)).toBeCloseTo(3 / 24, 15); // τ0: 8 → 5
    expect(Array.from(game.legalMask())).toEqual([1, 0, 1]);
    expect(game.actionOffset(0)).toBe(4); // on top of a
    expect(game.step(0)).toBeCloseTo(6 / 24, 15); // τ0: 5 → 2, τ1: 16 → 13
    expect(Array.from(game.legalMask())).toEqual([0, 0, 1]); // c (8 B) does not fit next to b
    expect(game.step(2)).toBe(0);
    expect(game.done).toBe(true);
    expect(game.totalTime).toBe(15);
    expect(() => game.step(2)).toThrow(/over/);
  });

  it('the non-greedy line (b to SLOW) makes room for c and ends at T = 12', () => {
    const { game, rewards } = replayActions(program, { candidates: 2 }, [0, 2, 0]);
    expect(Array.from(rewards)).toEqual([3 / 24, 0, 9 / 24]);
    expect(game.totalTime).toBe(12);
    expect(Array.from(game.mapping())).toEqual([0, SLOW, 0]);
  });

  it('rejects an illegal action with the legal list', () => {
    const game = new MallocGame(program, { candidates: 2 });
    expect(() => game.step(1)).toThrow(/action 1 is not legal at step 0 .*legal: 0, 2/);
  });

  it('grid candidates are fixed offsets masked by overlap and capacity', () => {
    // K = 4 over C = 8, α = 4 → Δ = max(4, ⌊8/4/4⌋·4) = 4: offsets 0, 4, 8, 12.
    const game = new MallocGame(program, { actionSpace: 'grid', candidates: 4 });
    expect([0, 1, 2, 3].map((a) => game.actionOffset(a))).toEqual([0, 4, 8, 12]);
    expect(Array.from(game.legalMask())).toEqual([1, 1, 0, 0, 1]);
    game.step(1); // a at 4
    expect(Array.from(game.legalMask())).toEqual([1, 0, 0, 0, 1]); // b fits only below a
    const obs = new Float32Array(game.observationSize);
    game.observe(obs);
    const layout = observationLayout(resolveGameOptions({ actionSpace: 'grid', candidates: 4 }));
    // Candidate 0 (offset 0): gap below 0, gap above 4 − (0 + 4) = 0; legal.
    expect(Array.from(obs.subarray(layout.candidates.offset, layout.candidates.offset + 4))).toEqual([0, 0, 0, 1]);
  });

  it('observes the current buffer: size/C, live range, uses, benefit, free bytes', () => {
    const game = new MallocGame(program, { candidates: 2, lookahead: 1 });
    game.step(0);
    const obs = new Float32Array(game.observationSize);
    game.observe(obs);
    const layout = observationLayout(resolveGameOptions({ candidates: 2, lookahead: 1 }));
    // b: size 4/8, start 0, end 2/2, length 1, uses 2/2, bytes 8/12, β 6/9, free (8 − 4)/8 while a is placed.
    const current = Array.from(obs.subarray(layout.currentBuffer.offset, layout.currentBuffer.offset + 8));
    expect(current.map((x) => Number(x.toFixed(6)))).toEqual([
      0.5,
      0,
      1,
      1,
      1,
      Number((8 / 12).toFixed(6)),
      Number((6 / 9).toFixed(6)),
      0.5,
    ]);
    // Lookahead: c = 8/8, start 1/2, end 1, β 1.
    expect(Array.from(obs.subarray(layout.lookahead.offset, layout.lookahead.offset + 4))).toEqual([1, 0.5, 1, 1]);
    expect(obs[layout.global.offset]).toBeCloseTo(3 / 24, 6);
    expect(obs[layout.global.offset + 1]).toBeCloseTo(1 / 3, 6);
  });

  it('episodeObservations rebuilds the observations and masks a live game saw', () => {
    const actions = [0, 2, 0];
    const rebuilt = episodeObservations(program, { candidates: 2 }, actions);
    const game = new MallocGame(program, { candidates: 2 });
    const obs = new Float32Array(game.observationSize);
    for (let k = 0; k < actions.length; k++) {
      game.observe(obs);
      expect(Array.from(rebuilt.observations.subarray(k * obs.length, (k + 1) * obs.length))).toEqual(Array.from(obs));
      expect(Array.from(rebuilt.legalMasks.subarray(k * 3, k * 3 + 3))).toEqual(Array.from(game.legalMask()));
      expect(rebuilt.rewards[k]).toBe(game.step(actions[k]));
    }
  });

  it('rejects bad options naming the field', () => {
    expect(() => resolveGameOptions({ candidates: 0 })).toThrow(/candidates/);
    expect(
      () =>
        new MallocGame(
          compileProgram({
            name: 'x',
            memory: { fastCapacity: 4, alignment: 1, fastBandwidth: 2, slowBandwidth: 1 },
            buffers: [{ id: 'a', size: 1, start: 0, end: 1 }],
            instructions: [{ computeTime: 1, accesses: [] }],
          }),
          { order: 'nope' as never },
        ),
    ).toThrow(/order/);
  });
});
