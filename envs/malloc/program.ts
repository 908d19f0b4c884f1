/**
 * Program validation and the cost model (spec "Cost model (XLA-style)"):
 *
 *   τ_i(M) = max(c_i, Σ_{(b, bytes) ∈ acc(i)} bytes / BW(mem_M(b)))       T(M) = Σ_i w_i · τ_i(M)
 *
 * Evaluated as τ_i = max(c_i, A_i − F_i·Δκ) with A_i = bytes_i / BW_slow (all traffic slow), F_i the
 * bytes of instruction i's traffic in fast memory (an exact integer) and Δκ = 1/BW_slow − 1/BW_fast ≥ 0:
 * the same value in exact arithmetic, but every rounding step is monotone, so moving a buffer from slow
 * to fast can never increase τ_i or T, not even by one ulp (invariant 4). T is summed in instruction
 * order, so the same mapping always costs the same, bit for bit.
 */
import { ConfigError } from '../../core/errors.js';
import { SLOW, type CompiledProgram, type MallocProgram, type Mapping } from './types.js';

/** Order in which the game presents buffers (spec: "a fixed, configurable order"). */
export type BufferOrder = 'start' | 'size' | 'benefit-density' | 'input';

/** Every valid {@link BufferOrder}, default first. */
export const BUFFER_ORDERS: readonly BufferOrder[] = ['start', 'size', 'benefit-density', 'input'];

/**
 * Validate a program and compute its typed-array form and derived quantities (aligned sizes, live
 * ranges, all-slow time, per-buffer benefit β_b). Throws ConfigError naming the program and the field
 * (`buffers[3].end`, `instructions[7].accesses[0].buffer`) and what is wrong.
 */
export function compileProgram(program: MallocProgram): CompiledProgram {
  const where = `program "${program.name}"`;
  const fail = (field: string, message: string): never => {
    throw new ConfigError(`${where}: ${field} ${message}`, { context: { program: program.name, field } });
  };
  const { memory } = program;
  if (!isPositiveInteger(memory.fastCapacity))
    fail('memory.fastCapacity', `must be a whole number of bytes ≥ 1, got ${memory.fastCapacity}`);
  if (!isPositiveInteger(memory.alignment)) fail('memory.alignment', `must be a whole number of bytes ≥ 1, got ${memory.alignment}`);
  if (!(memory.slowBandwidth > 0 && Number.isFinite(memory.slowBandwidth))) {
    fail('memory.slowBandwidth', `must be a finite number > 0 (bytes per time unit), got ${memory.slowBandwidth}`);
  }
  if (!(memory.fastBandwidth >= memory.slowBandwidth && Number.isFinite(memory.fastBandwidth))) {
    fail(
      'memory.fastBandwidth',
      `must be finite and ≥ memory.slowBandwidth (${memory.slowBandwidth}), got ${memory.fastBandwidth}; fast memory may not be slower`,
    );
  }
  const n = program.buffers.length;
  const T = program.instructions.length;
  if (n === 0) fail('buffers', 'is empty; a program needs at least one buffer');
  if (T === 0) fail('instructions', 'is empty; a program needs at least one instruction');

  const alignment = memory.alignment;
  const index = new Map<string, number>();
  const rawSize = new Float64Array(n);
  const size = new Float64Array(n);
  program.buffers.forEach((buffer, b) => {
    if (typeof buffer.id !== 'string' || buffer.id === '') fail(`buffers[${b}].id`, 'must be a non-empty string');
    if (index.has(buffer.id)) fail(`buffers[${b}].id`, `"${buffer.id}" repeats buffers[${index.get(buffer.id)}].id; ids must be unique`);
    index.set(buffer.id, b);
    if (!isPositiveInteger(buffer.size)) fail(`buffers[${b}].size`, `must be a whole number of bytes ≥ 1, got ${buffer.size}`);
    rawSize[b] = buffer.size;
    size[b] = Math.ceil(buffer.size / alignment) * alignment;
  });

  // Accesses grouped by buffer (CSR), with first/last accessing instruction per buffer.
  const counts = new Int32Array(n);
  const firstAccess = new Int32Array(n).fill(-1);
  const lastAccess = new Int32Array(n).fill(-1);
  const computeTime = new Float64Array(T);
  const weight = new Float64Array(T);
  const resolved: Array<Array<[number, number]>> = program.instructions.map((instruction, i) => {
    if (!(instruction.computeTime >= 0 && Number.isFinite(instruction.computeTime))) {
      fail(`instructions[${i}].computeTime`, `must be a finite number ≥ 0, got ${instruction.computeTime}`);
    }
    const w = instruction.weight ?? 1;
    if (!(w >= 0 && Number.isFinite(w))) fail(`instructions[${i}].weight`, `must be a finite number ≥ 0, got ${w}`);
    computeTime[i] = instruction.computeTime;
    weight[i] = w;
    return instruction.accesses.map((access, j) => {
      const b = index.get(access.buffer);
      if (b === undefined) fail(`instructions[${i}].accesses[${j}].buffer`, `"${access.buffer}" is not one of the program's buffers`);
      const bytes = access.bytes ?? rawSize[b as number];
      if (!(Number.isSafeInteger(bytes) && bytes >= 0))
        fail(`instructions[${i}].accesses[${j}].bytes`, `must be a whole number ≥ 0, got ${bytes}`);
      counts[b as number] += 1;
      if (firstAccess[b as number] < 0) firstAccess[b as number] = i;
      lastAccess[b as number] = i;
      return [b as number, bytes] as [number, number];
    });
  });

  const start = new Int32Array(n);
  const end = new Int32Array(n);
  program.buffers.forEach((buffer, b) => {
    const s = buffer.start ?? firstAccess[b];
    const e = buffer.end ?? (lastAccess[b] >= 0 ? lastAccess[b] + 1 : -1);
    if (s < 0 || e < 0) fail(`buffers[${b}]`, `("${buffer.id}") is never accessed, so it needs an explicit start and end`);
    if (!(Number.isInteger(s) && s >= 0 && s < T)) fail(`buffers[${b}].start`, `must be an instruction index in [0, ${T}), got ${s}`);
    if (!(Number.isInteger(e) && e > s && e <= T)) fail(`buffers[${b}].end`, `must be an integer in (start = ${s}, ${T}], got ${e}`);
    if (firstAccess[b] >= 0 && (firstAccess[b] < s || lastAccess[b] >= e)) {
      fail(
        `buffers[${b}]`,
        `("${buffer.id}") has live range [${s}, ${e}) but is accessed at instructions ${firstAccess[b]}..${lastAccess[b]}; the range must cover every access`,
      );
    }
    start[b] = s;
    end[b] = e;
  });

  const accessStart = new Int32Array(n + 1);
  for (let b = 0; b < n; b++) accessStart[b + 1] = accessStart[b] + counts[b];
  const total = accessStart[n];
  const accessInstruction = new Int32Array(total);
  const accessBytes = new Float64Array(total);
  const cursor = accessStart.slice(0, n);
  const instructionBytes = new Float64Array(T);
  resolved.forEach((accesses, i) => {
    for (const [b, bytes] of accesses) {
      accessInstruction[cursor[b]] = i;
      accessBytes[cursor[b]] = bytes;
      cursor[b] += 1;
      instructionBytes[i] += bytes;
    }
  });

  const slowTime = new Float64Array(T);
  for (let i = 0; i < T; i++) slowTime[i] = instructionBytes[i] / memory.slowBandwidth;
  const fastSavingPerByte = Math.max(0, 1 / memory.slowBandwidth - 1 / memory.fastBandwidth);
  let allSlowTime = 0;
  for (let i = 0; i < T; i++) allSlowTime += weight[i] * Math.max(computeTime[i], slowTime[i]);
  if (!(allSlowTime > 0))
    fail('instructions', 'have zero total time with every buffer slow (no compute and no accesses); nothing to optimise');

  // β_b: per instruction touched by b, move b's bytes there from slow to fast, all else slow.
  const benefit = new Float64Array(n);
  const useCount = new Int32Array(n);
  const accessedBytes = new Float64Array(n);
  const moved = new Float64Array(T);
  for (let b = 0; b < n; b++) {
    for (let k = accessStart[b]; k < accessStart[b + 1]; k++) {
      moved[accessInstruction[k]] += accessBytes[k];
      accessedBytes[b] += accessBytes[k];
    }
    useCount[b] = accessStart[b + 1] - accessStart[b];
    let saved = 0;
    for (let k = accessStart[b]; k < accessStart[b + 1]; k++) {
      const i = accessInstruction[k];
      if (moved[i] === 0) continue; // instruction already counted for b
      const before = Math.max(computeTime[i], slowTime[i]);
      const after = Math.max(computeTime[i], slowTime[i] - moved[i] * fastSavingPerByte);
      saved += weight[i] * (before - after);
      moved[i] = 0;
    }
    benefit[b] = saved;
  }

  // Peak live bytes via a difference array over instructions.
  const delta = new Float64Array(T + 1);
  for (let b = 0; b < n; b++) {
    delta[start[b]] += size[b];
    delta[end[b]] -= size[b];
  }
  let live = 0;
  let peakLiveBytes = 0;
  for (let i = 0; i < T; i++) {
    live += delta[i];
    if (live > peakLiveBytes) peakLiveBytes = live;
  }

  return Object.freeze({
    name: program.name,
    ids: Object.freeze(program.buffers.map((buffer) => buffer.id)),
    bufferCount: n,
    instructionCount: T,
    capacity: memory.fastCapacity,
    alignment,
    fastBandwidth: memory.fastBandwidth,
    slowBandwidth: memory.slowBandwidth,
    size,
    rawSize,
    start,
    end,
    accessStart,
    accessInstruction,
    accessBytes,
    computeTime,
    weight,
    instructionBytes,
    slowTime,
    fastSavingPerByte,
    allSlowTime,
    benefit,
    useCount,
    accessedBytes,
    peakLiveBytes,
  });
}

/** τ_i when `fastBytes` of instruction i's traffic is in fast memory: max(c_i, A_i − F_i·Δκ). */
export function instructionTime(program: CompiledProgram, i: number, fastBytes: number): number {
  return Math.max(program.computeTime[i], program.slowTime[i] - fastBytes * program.fastSavingPerByte);
}

/**
 * T(M) = Σ_i w_i · τ_i(M), recomputed from scratch. `offsets[b] ≥ 0` means fast memory, {@link SLOW}
 * (any negative value) slow memory. Does not check legality (see `checkMapping`).
 */
export function programTime(program: CompiledProgram, offsets: Mapping): number {
  const T = program.instructionCount;
  const fast = new Float64Array(T);
  for (let b = 0; b < program.bufferCount; b++) {
    if (!(offsets[b] >= 0)) continue;
    for (let k = program.accessStart[b]; k < program.accessStart[b + 1]; k++) fast[program.accessInstruction[k]] += program.accessBytes[k];
  }
  let total = 0;
  return timeOfFastTraffic(program, fast);
}

/** T = Σ_i w_i · τ_i for the per-instruction fast traffic `fastBytes` [T], summed in instruction order. */
export function timeOfFastTraffic(program: CompiledProgram, fastBytes: Float64Array): number {
  const { computeTime, slowTime, weight, fastSavingPerByte } = program;
  let total = 0;
  for (let i = 0; i < fastBytes.length; i++) total += weight[i] * Math.max(computeTime[i], slowTime[i] - fastBytes[i] * fastSavingPerByte);
  return total;
}

/** The all-slow mapping of a program: every offset {@link SLOW}. */
export function allSlowMapping(program: CompiledProgram): Float64Array {
  return new Float64Array(program.bufferCount).fill(SLOW);
}

/**
 * The buffer order of the game (ties always broken by buffer index, so the order is a pure function of
 * the program):
 *  - `start`: live-range start ascending, larger size first (spec default);
 *  - `size`: size descending, then start ascending;
 *  - `benefit-density`: β_b / s_b descending (the baseline's order);
 *  - `input`: as listed in the program.
 */
export function bufferOrder(program: CompiledProgram, order: BufferOrder): Int32Array {
  const ids = Array.from({ length: program.bufferCount }, (_, b) => b);
  const { start, size, benefit } = program;
  switch (order) {
    case 'start':
      ids.sort((a, b) => start[a] - start[b] || size[b] - size[a] || a - b);
      break;
    case 'size':
      ids.sort((a, b) => size[b] - size[a] || start[a] - start[b] || a - b);
      break;
    case 'benefit-density':
      ids.sort((a, b) => benefit[b] / size[b] - benefit[a] / size[a] || a - b);
      break;
    case 'input':
      break;
    default:
      throw new ConfigError(`unknown buffer order "${order as string}"; valid: ${BUFFER_ORDERS.join(', ')}`);
  }
  return Int32Array.from(ids);
}

function isPositiveInteger(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 1;
}
