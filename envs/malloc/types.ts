/**
 * Glossary of the memory-mapping game (docs/mallocmuzero.md, "The game").
 *
 * Units. Sizes, offsets, capacities and access volumes are in **bytes** (integers). Time is in abstract
 * **time units**: compute times are given in them, and a bandwidth is bytes per time unit, so
 * `bytes / bandwidth` is a time. Schedule positions (live ranges) are **instruction indices**, not times.
 *
 * A `MallocProgram` is the JSON-serialisable description a user writes or a generator produces; a
 * `CompiledProgram` is its validated, typed-array form that the game, the cost model, the checker and
 * the baselines read. Buffers are referred to by their index in `MallocProgram.buffers` everywhere after
 * compilation.
 */

/** Fast and slow memory (spec "Memories"). */
export interface MemorySpec {
  /** C_fast: bytes of fast memory; a placement [offset, offset + size) must end at or below it. */
  readonly fastCapacity: number;
  /** α: every size is rounded up to a multiple of it, every offset must be a multiple of it (bytes ≥ 1). */
  readonly alignment: number;
  /** BW_fast in bytes per time unit; must be ≥ slowBandwidth. */
  readonly fastBandwidth: number;
  /** BW_slow in bytes per time unit (slow memory is unbounded). */
  readonly slowBandwidth: number;
}

/** A buffer as written in a program file. */
export interface ProgramBuffer {
  /** Unique name; instructions refer to it. */
  readonly id: string;
  /** s_b before alignment, bytes (integer ≥ 1). */
  readonly size: number;
  /**
   * First instruction index of the half-open live range [start, end). Optional: by default the first
   * instruction that accesses the buffer.
   */
  readonly start?: number;
  /** One past the last instruction index of the live range. Optional: by default last access + 1. */
  readonly end?: number;
}

/** One read or write of a buffer by an instruction. */
export interface ProgramAccess {
  /** `ProgramBuffer.id` of the accessed buffer. */
  readonly buffer: string;
  /** Bytes moved (integer ≥ 0); default: the buffer's (unaligned) size. */
  readonly bytes?: number;
}

/** One scheduled instruction i. */
export interface ProgramInstruction {
  /** Free-form label (e.g. `layer3.ffn.up`), for people. */
  readonly name?: string;
  /** c_i ≥ 0, time units. */
  readonly computeTime: number;
  /** Loop weight w_i ≥ 0 (how often the instruction runs); default 1. */
  readonly weight?: number;
  /** acc(i): the buffers it reads or writes. */
  readonly accesses: readonly ProgramAccess[];
}

/** A program in its file form (JSON-serialisable). */
export interface MallocProgram {
  readonly name: string;
  readonly memory: MemorySpec;
  readonly buffers: readonly ProgramBuffer[];
  /** The schedule t = 0..T−1, in order. */
  readonly instructions: readonly ProgramInstruction[];
}

/**
 * A validated program in typed arrays (buffer b, instruction i). Immutable by convention: the game and
 * the solvers never write to it.
 */
export interface CompiledProgram {
  readonly name: string;
  /** `MallocProgram.buffers[b].id`. */
  readonly ids: readonly string[];
  /** n, number of buffers. */
  readonly bufferCount: number;
  /** T, number of instructions. */
  readonly instructionCount: number;
  /** C_fast in bytes. */
  readonly capacity: number;
  /** α in bytes. */
  readonly alignment: number;
  /** Bandwidths, bytes per time unit. */
  readonly fastBandwidth: number;
  readonly slowBandwidth: number;
  /** [n] s_b rounded up to α. */
  readonly size: Float64Array;
  /** [n] size as given (before alignment). */
  readonly rawSize: Float64Array;
  /** [n] live range [start, end), instruction indices. */
  readonly start: Int32Array;
  readonly end: Int32Array;
  /** [n + 1] CSR row pointers into the access arrays: accesses of b are [accessStart[b], accessStart[b+1]). */
  readonly accessStart: Int32Array;
  /** [total accesses] instruction index of each access. */
  readonly accessInstruction: Int32Array;
  /** [total accesses] bytes of each access. */
  readonly accessBytes: Float64Array;
  /** [T] c_i, time units. */
  readonly computeTime: Float64Array;
  /** [T] w_i. */
  readonly weight: Float64Array;
  /** [T] Σ bytes accessed by instruction i (all buffers slow: its memory traffic). */
  readonly instructionBytes: Float64Array;
  /** [T] A_i = instructionBytes[i] / BW_slow: instruction i's memory time with all its traffic slow. */
  readonly slowTime: Float64Array;
  /** Δκ = 1/BW_slow − 1/BW_fast ≥ 0: time saved per byte of traffic moved to fast memory. */
  readonly fastSavingPerByte: number;
  /** T(M_allslow) = Σ_i w_i · max(c_i, A_i) > 0. */
  readonly allSlowTime: number;
  /** [n] β_b: T(M_allslow) − T(only b fast), the time saved by placing b alone in fast memory (≥ 0). */
  readonly benefit: Float64Array;
  /** [n] number of accesses of b. */
  readonly useCount: Int32Array;
  /** [n] Σ bytes over b's accesses. */
  readonly accessedBytes: Float64Array;
  /** Largest Σ size of buffers live at one instruction (aligned sizes), bytes. */
  readonly peakLiveBytes: number;
}

/**
 * A mapping M: `offsets[b]` is b's fast-memory offset in bytes, or {@link SLOW} when b lives in slow
 * memory. Indexed by buffer index.
 */
export type Mapping = ArrayLike<number>;

/** Offset value meaning "in slow memory". */
export const SLOW = -1;
