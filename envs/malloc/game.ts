/**
 * mallocGame: memory mapping as a single-player game (spec "The game (our design)").
 *
 * Buffers are presented one at a time in a fixed order; at each step the player either places the
 * current buffer at one of K candidate offsets of fast memory (`PLACE(k)`, actions 0..K−1) or leaves
 * it in slow memory (`SLOW`, action K, always legal). Decisions are final. The dense reward of a step
 * is the time it saved as a fraction of the all-slow time, r_k = (T(M_{k−1}) − T(M_k)) / T(M_allslow)
 * ≥ 0, so the return is the fraction of time saved.
 *
 * Candidates (`actionSpace`):
 *  - `canonical` (default): the lowest K *legal* canonical offsets — 0 and the tops of placed buffers
 *    whose live ranges intersect the current one — i.e. the starts of the K lowest free gaps that fit
 *    the buffer. Keeping the K lowest legal ones (rather than the K lowest, then masking) means no legal
 *    canonical offset hides behind K illegal ones; slots past the last legal one are padding, masked.
 *  - `grid`: the fixed offsets g·Δ, g < K, Δ = ⌊C_fast / K⌋ rounded down to α (at least α), each masked
 *    by legality.
 * An offset o is legal for buffer b iff o ≥ 0, o % α = 0, o + s_b ≤ C_fast and no placed buffer
 * overlaps [o, o + s_b) in address while its live range intersects b's (half-open intervals).
 *
 * Performance: typed arrays throughout, no allocation in `legalMask`/`step`; one candidate pass is
 * O(placed buffers), a placement O(accesses + T + live range + occupancy cells).
 */
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { FastMemoryLayout, gapScratch } from './packing.js';
import { BUFFER_ORDERS, bufferOrder, timeOfFastTraffic, type BufferOrder } from './program.js';
import { SLOW, type CompiledProgram } from './types.js';

/** Game options; the zod schema holds the defaults and descriptions. */
export const MallocGameOptionsSchema = z
  .object({
    actionSpace: z
      .enum(['canonical', 'grid'])
      .default('canonical')
      .describe(
        'Candidate offsets: `canonical` = the K lowest legal offsets among 0 and the tops of time-overlapping placed buffers; `grid` = K fixed, evenly spaced offsets.',
      ),
    candidates: z.number().int().min(1).max(1024).default(32).describe('K, the number of PLACE actions (action K is SLOW).'),
    order: z
      .enum(BUFFER_ORDERS as [BufferOrder, ...BufferOrder[]])
      .default('start')
      .describe('Order of presentation: `start` (live-range start ascending, larger first), `size`, `benefit-density`, `input`.'),
    occupancyOffsetBins: z.number().int().min(1).max(256).default(16).describe('Address bins of the occupancy grid in the observation.'),
    occupancyTimeBins: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(16)
      .describe('Time (instruction) bins of the occupancy grid in the observation.'),
    lookahead: z.number().int().min(0).max(64).default(4).describe('L, how many upcoming buffers the observation summarises.'),
  })
  .strict();

/** Resolved game options. */
export type MallocGameOptions = z.output<typeof MallocGameOptionsSchema>;

/** Fill in defaults and validate; throws ConfigError naming the field. */
export function resolveGameOptions(input: Partial<MallocGameOptions> = {}): MallocGameOptions {
  const parsed = MallocGameOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`malloc game option ${issue.path.join('.') || '(root)'}: ${issue.message}`, { context: { path: issue.path } });
  }
  return Object.freeze(parsed.data);
}

/** Number of features of each observation section (see {@link observationLayout}). */
export const CURRENT_BUFFER_FEATURES = 8;
export const CANDIDATE_FEATURES = 4;
export const LOOKAHEAD_FEATURES = 4;
export const GLOBAL_FEATURES = 2;

/** Where each section of the flat observation vector lives: [offset, offset + length). */
export interface ObservationLayout {
  readonly size: number;
  readonly currentBuffer: { readonly offset: number; readonly length: number };
  readonly occupancy: { readonly offset: number; readonly length: number };
  readonly footprint: { readonly offset: number; readonly length: number };
  readonly candidates: { readonly offset: number; readonly length: number };
  readonly lookahead: { readonly offset: number; readonly length: number };
  readonly global: { readonly offset: number; readonly length: number };
}

/**
 * Layout of the observation (spec "Observation"), all features in [0, 1]:
 *  1. current buffer [8]: size/C, start/T, end/T, (end − start)/T, uses / max uses, accessed bytes / max,
 *     β_b / max β, free fast bytes over its live range / C (C minus the peak bytes placed during it);
 *  2. occupancy grid [Bo·Bt], row-major (address bin, time bin): occupied share of each cell's
 *     bytes × instructions;
 *  3. current buffer's time footprint [Bt]: share of each time bin inside its live range;
 *  4. candidates [K·4]: min(1, offset/C), gap below/C (free bytes from the nearest occupied address under the
 *     offset), gap above/C (free bytes between the buffer's top and the next occupied address or C),
 *     legal (0/1); all 0 for padding and illegal slots except the offset;
 *  5. next L buffers [L·4]: size/C, start/T, end/T, β/max β; 0 past the last buffer;
 *  6. global [2]: return so far, share of buffers decided.
 */
export function observationLayout(options: MallocGameOptions): ObservationLayout {
  let offset = 0;
  const section = (length: number) => {
    const s = { offset, length };
    offset += length;
    return s;
  };
  const currentBuffer = section(CURRENT_BUFFER_FEATURES);
  const occupancy = section(options.occupancyOffsetBins * options.occupancyTimeBins);
  const footprint = section(options.occupancyTimeBins);
  const candidates = section(options.candidates * CANDIDATE_FEATURES);
  const lookahead = section(options.lookahead * LOOKAHEAD_FEATURES);
  const global = section(GLOBAL_FEATURES);
  return { size: offset, currentBuffer, occupancy, footprint, candidates, lookahead, global };
}

/** Read-only data shared by a game and all its clones. */
interface GameShared {
  readonly program: CompiledProgram;
  readonly options: MallocGameOptions;
  readonly order: Int32Array;
  readonly layout: ObservationLayout;
  readonly gridStep: number;
  readonly maxUses: number;
  readonly maxAccessedBytes: number;
  readonly maxBenefit: number;
  /** Scratch for gap queries; safe to share because it is only used inside one method call. */
  readonly gapStart: Float64Array;
  readonly gapLength: Float64Array;
}

/**
 * One play of the game on one program. `clone()` gives an independent copy (search on the true
 * simulator); replaying the same actions from `new MallocGame(program, options)` reproduces every
 * reward, the mapping and the time bit for bit.
 */
export class MallocGame {
  /** K + 1: K PLACE actions and SLOW. */
  readonly numActions: number;
  /** Index of the SLOW action (= K). */
  readonly slowAction: number;

  private readonly shared: GameShared;
  private readonly layout: FastMemoryLayout;
  /** [T] bytes of each instruction's traffic in fast memory. */
  private readonly fastBytes: Float64Array;
  /** [T] bytes of fast memory in use at each instruction. */
  private readonly liveBytes: Float64Array;
  /** [Bo·Bt] occupancy grid (see observationLayout). */
  private readonly grid: Float32Array;
  private time: number;
  private returnSum = 0;
  private stepCount = 0;

  // Candidate cache for the current step (valid while candidatesFor === stepCount).
  private readonly candidateOffset: Float64Array;
  private readonly candidateBelow: Float64Array;
  private readonly candidateAbove: Float64Array;
  private readonly legal: Uint8Array;
  private candidatesFor = -1;

  constructor(program: CompiledProgram, options: Partial<MallocGameOptions> | MallocGameOptions = {}, source?: MallocGame) {
    if (source) {
      this.shared = source.shared;
      this.layout = source.layout.clone();
      this.fastBytes = source.fastBytes.slice();
      this.liveBytes = source.liveBytes.slice();
      this.grid = source.grid.slice();
      this.time = source.time;
      this.returnSum = source.returnSum;
      this.stepCount = source.stepCount;
    } else {
      const resolved = resolveGameOptions(options);
      const K = resolved.candidates;
      let maxUses = 1;
      let maxAccessedBytes = 1;
      let maxBenefit = 0;
      for (let b = 0; b < program.bufferCount; b++) {
        maxUses = Math.max(maxUses, program.useCount[b]);
        maxAccessedBytes = Math.max(maxAccessedBytes, program.accessedBytes[b]);
        maxBenefit = Math.max(maxBenefit, program.benefit[b]);
      }
      const scratch = gapScratch(program);
      this.shared = {
        program,
        options: resolved,
        order: bufferOrder(program, resolved.order),
        layout: observationLayout(resolved),
        gridStep: Math.max(program.alignment, Math.floor(program.capacity / K / program.alignment) * program.alignment),
        maxUses,
        maxAccessedBytes,
        maxBenefit: maxBenefit > 0 ? maxBenefit : 1,
        gapStart: scratch.start,
        gapLength: scratch.length,
      };
      this.layout = new FastMemoryLayout(program);
      this.fastBytes = new Float64Array(program.instructionCount);
      this.liveBytes = new Float64Array(program.instructionCount);
      this.grid = new Float32Array(resolved.occupancyOffsetBins * resolved.occupancyTimeBins);
      this.time = program.allSlowTime;
    }
    const K = this.shared.options.candidates;
    this.numActions = K + 1;
    this.slowAction = K;
    this.candidateOffset = new Float64Array(K);
    this.candidateBelow = new Float64Array(K);
    this.candidateAbove = new Float64Array(K);
    this.legal = new Uint8Array(K + 1);
  }

  /** The program being mapped. */
  get program(): CompiledProgram {
    return this.shared.program;
  }

  /** The resolved options. */
  get options(): MallocGameOptions {
    return this.shared.options;
  }

  /** Buffer indices in order of presentation. Read-only. */
  get order(): Int32Array {
    return this.shared.order;
  }

  /** Length of the flat observation vector. */
  get observationSize(): number {
    return this.shared.layout.size;
  }

  /** Number of decisions taken so far (k). */
  get stepIndex(): number {
    return this.stepCount;
  }

  /** True once every buffer has been decided (episode length = number of buffers). */
  get done(): boolean {
    return this.stepCount >= this.shared.program.bufferCount;
  }

  /** Buffer decided by the next step, or −1 when done. */
  get currentBuffer(): number {
    return this.done ? -1 : this.shared.order[this.stepCount];
  }

  /** T(M_k) of the current mapping (undecided buffers count as slow), time units. */
  get totalTime(): number {
    return this.time;
  }

  /** Σ of the rewards so far. Equals (T_allslow − T(M_k)) / T_allslow up to rounding. */
  get returnSoFar(): number {
    return this.returnSum;
  }

  /** An independent copy: stepping either never affects the other. */
  clone(): MallocGame {
    return new MallocGame(this.shared.program, this.shared.options, this);
  }

  /** The current mapping: offset of each buffer placed in fast memory, {@link SLOW} for the rest. A copy. */
  mapping(): Float64Array {
    return this.layout.offsets.slice();
  }

  /**
   * Legal actions for the current step: [K + 1], 1 = legal; entry K (SLOW) is always 1. The array is
   * owned by the game and valid until the next `step`; do not modify it. All zeros once done.
   */
  legalMask(): Uint8Array {
    this.ensureCandidates();
    return this.legal;
  }

  /**
   * Offset that PLACE action `action` would use this step (bytes), {@link SLOW} for the SLOW action and
   * −2 for a padding slot (canonical action space only).
   */
  actionOffset(action: number): number {
    this.ensureCandidates();
    if (action === this.slowAction) return SLOW;
    if (!(action >= 0 && action < this.slowAction)) throw new RangeError(`action ${action} is outside [0, ${this.numActions})`);
    return this.candidateOffset[action];
  }

  /**
   * Decide the current buffer; returns the dense reward r_k ≥ 0. Throws RangeError for an illegal
   * action or when the episode is over.
   */
  step(action: number): number {
    const program = this.shared.program;
    if (this.done) throw new RangeError(`the game is over: all ${program.bufferCount} buffers are decided`);
    this.ensureCandidates();
    if (!(action >= 0 && action < this.numActions && this.legal[action] === 1)) {
      throw new RangeError(
        `action ${action} is not legal at step ${this.stepCount} (buffer "${program.ids[this.currentBuffer]}"); legal: ${legalList(this.legal)}`,
      );
    }
    const b = this.shared.order[this.stepCount];
    let reward = 0;
    if (action !== this.slowAction) reward = this.place(b, this.candidateOffset[action]);
    this.stepCount += 1;
    this.candidatesFor = -1;
    return reward;
  }

  /**
   * Write the observation of the current state into `out[at .. at + observationSize)` (layout:
   * {@link observationLayout}). Once done, the buffer-specific sections are zero.
   */
  observe(out: Float32Array, at = 0): void {
    const { program, layout, options, order, maxUses, maxAccessedBytes, maxBenefit } = this.shared;
    if (out.length < at + layout.size)
      throw new RangeError(`observation needs ${layout.size} floats at ${at}, the array has ${out.length}`);
    out.fill(0, at, at + layout.size);
    const C = program.capacity;
    const T = program.instructionCount;
    const Bt = options.occupancyTimeBins;
    out.set(this.grid, at + layout.occupancy.offset);
    const g = at + layout.global.offset;
    out[g] = this.returnSum;
    out[g + 1] = this.stepCount / program.bufferCount;
    if (this.done) return;

    const b = order[this.stepCount];
    const s = program.size[b];
    const st = program.start[b];
    const en = program.end[b];
    const c = at + layout.currentBuffer.offset;
    out[c] = Math.min(1, s / C);
    out[c + 1] = st / T;
    out[c + 2] = en / T;
    out[c + 3] = (en - st) / T;
    out[c + 4] = program.useCount[b] / maxUses;
    out[c + 5] = program.accessedBytes[b] / maxAccessedBytes;
    out[c + 6] = program.benefit[b] / maxBenefit;
    let peak = 0;
    for (let t = st; t < en; t++) if (this.liveBytes[t] > peak) peak = this.liveBytes[t];
    out[c + 7] = Math.max(0, C - peak) / C;

    const f = at + layout.footprint.offset;
    const binWidth = T / Bt;
    for (let tb = Math.floor(st / binWidth); tb < Bt && tb * binWidth < en; tb++) {
      out[f + tb] = (Math.min(en, (tb + 1) * binWidth) - Math.max(st, tb * binWidth)) / binWidth;
    }

    this.ensureCandidates();
    const K = options.candidates;
    const cand = at + layout.candidates.offset;
    for (let a = 0; a < K; a++) {
      const o = this.candidateOffset[a];
      if (o < 0) continue;
      const q = cand + a * 4;
      out[q] = Math.min(1, o / C); // grid offsets at or past C are shown as 1 (never legal)
      if (this.legal[a]) {
        out[q + 1] = this.candidateBelow[a] / C;
        out[q + 2] = this.candidateAbove[a] / C;
        out[q + 3] = 1;
      }
    }

    const look = at + layout.lookahead.offset;
    for (let j = 0; j < options.lookahead; j++) {
      const k = this.stepCount + 1 + j;
      if (k >= program.bufferCount) break;
      const nb = order[k];
      const q = look + j * 4;
      out[q] = Math.min(1, program.size[nb] / C);
      out[q + 1] = program.start[nb] / T;
      out[q + 2] = program.end[nb] / T;
      out[q + 3] = program.benefit[nb] / maxBenefit;
    }
  }

  /** Compute candidates and the legality mask for the current step, once per step. */
  private ensureCandidates(): void {
    if (this.candidatesFor === this.stepCount) return;
    this.candidatesFor = this.stepCount;
    const { program, options, gapStart, gapLength } = this.shared;
    const K = options.candidates;
    const legal = this.legal;
    const offsets = this.candidateOffset;
    const below = this.candidateBelow;
    const above = this.candidateAbove;
    legal.fill(0);
    if (this.done) return;
    legal[K] = 1;
    const b = this.shared.order[this.stepCount];
    const s = program.size[b];
    if (options.actionSpace === 'canonical') {
      const found = this.layout.freeGaps(program.start[b], program.end[b], s, K, gapStart, gapLength);
      for (let a = 0; a < found; a++) {
        offsets[a] = gapStart[a];
        below[a] = 0;
        above[a] = gapLength[a] - s;
        legal[a] = 1;
      }
      for (let a = found; a < K; a++) {
        offsets[a] = -2;
        below[a] = 0;
        above[a] = 0;
      }
      return;
    }
    // Grid: all free gaps, then one pointer walk over the ascending grid offsets.
    const gaps = this.layout.freeGaps(program.start[b], program.end[b], 1, gapStart.length, gapStart, gapLength);
    const step = this.shared.gridStep;
    let j = 0;
    for (let a = 0; a < K; a++) {
      const o = a * step;
      offsets[a] = o;
      while (j < gaps && gapStart[j] + gapLength[j] <= o) j++;
      if (j < gaps && gapStart[j] <= o && o + s <= gapStart[j] + gapLength[j]) {
        legal[a] = 1;
        below[a] = o - gapStart[j];
        above[a] = gapStart[j] + gapLength[j] - (o + s);
      } else {
        below[a] = 0;
        above[a] = 0;
      }
    }
  }

  /** Put b at `offset`; update traffic, time, occupancy. Returns the reward. */
  private place(b: number, offset: number): number {
    const { program, options } = this.shared;
    this.layout.place(b, offset);
    const { accessStart, accessInstruction, accessBytes } = program;
    for (let k = accessStart[b]; k < accessStart[b + 1]; k++) this.fastBytes[accessInstruction[k]] += accessBytes[k];
    const before = this.time;
    const after = timeOfFastTraffic(program, this.fastBytes);
    this.time = after;
    const reward = (before - after) / program.allSlowTime;
    this.returnSum += reward;

    const s = program.size[b];
    const st = program.start[b];
    const en = program.end[b];
    for (let t = st; t < en; t++) this.liveBytes[t] += s;

    // Occupancy grid: add the overlap share of [offset, offset + s) × [st, en) to each cell.
    const Bo = options.occupancyOffsetBins;
    const Bt = options.occupancyTimeBins;
    const timeBin = program.instructionCount / Bt;
    const addressBin = program.capacity / Bo;
    const top = Math.min(program.capacity, offset + s);
    const firstOb = Math.min(Bo - 1, Math.floor(offset / addressBin));
    const firstTb = Math.min(Bt - 1, Math.floor(st / timeBin));
    for (let ob = firstOb; ob < Bo && ob * addressBin < top; ob++) {
      const addressShare = (Math.min(top, (ob + 1) * addressBin) - Math.max(offset, ob * addressBin)) / addressBin;
      if (addressShare <= 0) continue;
      for (let tb = firstTb; tb < Bt && tb * timeBin < en; tb++) {
        const timeShare = (Math.min(en, (tb + 1) * timeBin) - Math.max(st, tb * timeBin)) / timeBin;
        if (timeShare > 0) this.grid[ob * Bt + tb] += addressShare * timeShare;
      }
    }
    return reward;
  }
}

/** Play `actions` from the start; the game afterwards and the reward of every step. */
export function replayActions(
  program: CompiledProgram,
  options: Partial<MallocGameOptions> | MallocGameOptions,
  actions: ArrayLike<number>,
): { game: MallocGame; rewards: Float64Array } {
  const game = new MallocGame(program, options);
  const rewards = new Float64Array(actions.length);
  for (let k = 0; k < actions.length; k++) rewards[k] = game.step(actions[k]);
  return { game, rewards };
}

/**
 * Observations and legal masks of every state of an episode, reconstructed by replaying its actions:
 * observations [L · observationSize], legalMasks [L · numActions] (L = actions.length). Lets
 * self-play send only actions across the queue; the learner rebuilds what it trains on.
 */
export function episodeObservations(
  program: CompiledProgram,
  options: Partial<MallocGameOptions> | MallocGameOptions,
  actions: ArrayLike<number>,
): { observations: Float32Array; legalMasks: Uint8Array; rewards: Float64Array } {
  const game = new MallocGame(program, options);
  const O = game.observationSize;
  const A = game.numActions;
  const L = actions.length;
  const observations = new Float32Array(L * O);
  const legalMasks = new Uint8Array(L * A);
  const rewards = new Float64Array(L);
  for (let k = 0; k < L; k++) {
    game.observe(observations, k * O);
    legalMasks.set(game.legalMask(), k * A);
    rewards[k] = game.step(actions[k]);
  }
  return { observations, legalMasks, rewards };
}

function legalList(mask: Uint8Array): string {
  const out: number[] = [];
  for (let a = 0; a < mask.length; a++) if (mask[a]) out.push(a);
  return out.join(', ');
}
