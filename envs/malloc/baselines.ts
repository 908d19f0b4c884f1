/**
 * Classical solutions that give the agent's numbers context (spec "Baseline"):
 *
 *  - {@link xlaLikeBaseline}: buffers by decreasing benefit density β_b / s_b, each at its lowest legal
 *    offset (first fit over the canonical offsets), else slow — the comparison point of `speed-up`;
 *  - {@link bestFitReference}: the same greedy scheme over several orderings × {first fit, best fit},
 *    keeping the fastest mapping — a stronger classical reference;
 *  - {@link exactGameOptimum}: branch and bound over the game itself (its buffer order, every canonical
 *    offset as a candidate) for tiny programs — the best return any player of the game can reach.
 * Every result is checked and costed by the same checker and cost model as the agent's (invariant 5).
 */
import { evaluateMapping } from './checker.js';
import { MallocGame, type MallocGameOptions } from './game.js';
import { FastMemoryLayout, gapScratch } from './packing.js';
import { allSlowMapping } from './program.js';
import type { CompiledProgram } from './types.js';

/** A checked, costed mapping produced by a classical method. */
export interface BaselineSolution {
  /** Which method (and ordering / rule) produced it. */
  readonly method: string;
  /** Offsets per buffer, −1 = slow. */
  readonly offsets: Float64Array;
  /** T(M), time units. */
  readonly time: number;
  /** (T_allslow − T(M)) / T_allslow. */
  readonly saved: number;
}

/** How a greedy pass chooses among the free gaps that fit. */
export type PlacementRule = 'first-fit' | 'best-fit';

/** Orderings tried by {@link bestFitReference}. */
export const REFERENCE_ORDERINGS = ['benefit-density', 'benefit', 'benefit-per-byte-instruction', 'size', 'start', 'short-lived'] as const;
export type ReferenceOrdering = (typeof REFERENCE_ORDERINGS)[number];

/** Buffer indices in `ordering` (ties by index). */
export function referenceOrder(program: CompiledProgram, ordering: ReferenceOrdering): Int32Array {
  const { benefit, size, start, end } = program;
  const key: (b: number) => number = {
    'benefit-density': (b: number) => -benefit[b] / size[b],
    benefit: (b: number) => -benefit[b],
    'benefit-per-byte-instruction': (b: number) => -benefit[b] / (size[b] * (end[b] - start[b])),
    size: (b: number) => -size[b],
    start: (b: number) => start[b],
    'short-lived': (b: number) => end[b] - start[b],
  }[ordering];
  const ids = Array.from({ length: program.bufferCount }, (_, b) => b);
  ids.sort((a, b) => key(a) - key(b) || a - b);
  return Int32Array.from(ids);
}

/**
 * Greedy mapping: visit buffers in `order`; place each with positive benefit at the offset `rule`
 * picks among the free gaps that fit it, else leave it slow.
 */
export function greedyMapping(program: CompiledProgram, order: ArrayLike<number>, rule: PlacementRule): Float64Array {
  const layout = new FastMemoryLayout(program);
  const scratch = gapScratch(program);
  for (let k = 0; k < order.length; k++) {
    const b = order[k];
    if (!(program.benefit[b] > 0)) continue;
    const offset =
      rule === 'first-fit' ? layout.firstFit(b, scratch.start, scratch.length) : layout.bestFit(b, scratch.start, scratch.length);
    if (offset >= 0) layout.place(b, offset);
  }
  return layout.offsets.slice();
}

/** The XLA-like baseline: benefit density order, lowest legal offset, else slow. */
export function xlaLikeBaseline(program: CompiledProgram): BaselineSolution {
  return solution(program, 'xla-like', greedyMapping(program, referenceOrder(program, 'benefit-density'), 'first-fit'));
}

/** The best of the greedy passes over {@link REFERENCE_ORDERINGS} × {first fit, best fit}. */
export function bestFitReference(program: CompiledProgram): BaselineSolution {
  let best: BaselineSolution | undefined;
  for (const ordering of REFERENCE_ORDERINGS) {
    const order = referenceOrder(program, ordering);
    for (const rule of ['first-fit', 'best-fit'] as const) {
      const candidate = solution(program, `reference(${ordering}, ${rule})`, greedyMapping(program, order, rule));
      if (best === undefined || candidate.time < best.time) best = candidate;
    }
  }
  return best as BaselineSolution;
}

/** Result of {@link exactGameOptimum}. */
export interface GameOptimum extends BaselineSolution {
  /** The optimal action sequence in the game (with K = n + 1 canonical candidates). */
  readonly actions: Int32Array;
  /** True when the search finished (the result is optimal); false when it stopped at `nodeLimit`. */
  readonly optimal: boolean;
  /** Search nodes expanded. */
  readonly nodes: number;
}

/**
 * Branch and bound over the game in its buffer order, every canonical offset a candidate
 * (`candidates` is raised to n + 1 so none is cut off). The bound: from a state with time T_k, the
 * remaining buffers can save at most Σ β_b — placing a buffer never saves more than it does alone in
 * an otherwise slow program, because τ_i is a convex, non-increasing function of the fast bytes of
 * instruction i. Exponential: meant for programs of up to ~15 buffers.
 */
export function exactGameOptimum(
  program: CompiledProgram,
  options: Partial<MallocGameOptions> = {},
  search: { nodeLimit?: number } = {},
): GameOptimum {
  const nodeLimit = search.nodeLimit ?? 200_000;
  if (program.bufferCount > 64) {
    throw new RangeError(
      `exactGameOptimum is exponential and meant for tiny programs; "${program.name}" has ${program.bufferCount} buffers (at most 64)`,
    );
  }
  const root = new MallocGame(program, { ...options, candidates: Math.max(1, program.bufferCount + 1), actionSpace: 'canonical' });
  const n = program.bufferCount;
  // Remaining benefit after step k: Σ β over order[k..n).
  const remaining = new Float64Array(n + 1);
  for (let k = n - 1; k >= 0; k--) remaining[k] = remaining[k + 1] + program.benefit[root.order[k]];
  const slack = 1e-12 * program.allSlowTime;
  let bestTime = Infinity;
  let bestGame: MallocGame | undefined;
  let bestActions = new Int32Array(n);
  const path = new Int32Array(n);
  let nodes = 0;
  let complete = true;

  const visit = (game: MallocGame): void => {
    if (nodes >= nodeLimit) {
      complete = false;
      return;
    }
    nodes += 1;
    if (game.done) {
      if (game.totalTime < bestTime) {
        bestTime = game.totalTime;
        bestGame = game;
        bestActions = path.slice();
      }
      return;
    }
    if (game.totalTime - remaining[game.stepIndex] >= bestTime - slack) return;
    const mask = game.legalMask();
    const k = game.stepIndex;
    const legalActions: number[] = [];
    for (let a = 0; a < mask.length; a++) if (mask[a]) legalActions.push(a);
    for (const a of legalActions) {
      const child = game.clone();
      child.step(a);
      path[k] = a;
      visit(child);
    }
  };
  visit(root);
  const offsets = bestGame ? bestGame.mapping() : allSlowMapping(program);
  return { ...solution(program, 'game-optimum', offsets), actions: bestActions, optimal: complete, nodes };
}

function solution(program: CompiledProgram, method: string, offsets: Float64Array): BaselineSolution {
  const evaluated = evaluateMapping(program, offsets);
  if (!evaluated.check.ok) {
    // A classical method producing an illegal mapping is a bug here, not bad input.
    throw new Error(`${method} produced an invalid mapping for "${program.name}": ${evaluated.check.violations[0]}`);
  }
  return { method, offsets, time: evaluated.time, saved: evaluated.saved };
}
