/** fast-check generators of small random programs and action choices for the malloc game tests. */
import fc from 'fast-check';
import { compileProgram } from '../../../envs/malloc/program.js';
import type { CompiledProgram, MallocProgram } from '../../../envs/malloc/types.js';

/** A random valid program: 1–10 buffers over 1–8 instructions, alignment 1/2/4/8, tight capacity. */
export const programArbitrary: fc.Arbitrary<MallocProgram> = fc
  .record({
    T: fc.integer({ min: 1, max: 8 }),
    alignment: fc.constantFrom(1, 2, 4, 8),
    capacity: fc.integer({ min: 1, max: 120 }),
    fastBandwidth: fc.double({ min: 1, max: 16, noNaN: true }),
    compute: fc.array(fc.double({ min: 0, max: 60, noNaN: true }), { minLength: 8, maxLength: 8 }),
    buffers: fc.array(
      fc.record({
        size: fc.integer({ min: 1, max: 48 }),
        startSeed: fc.nat(),
        lengthSeed: fc.nat(),
        uses: fc.array(fc.record({ at: fc.nat(), bytes: fc.integer({ min: 0, max: 200 }) }), { maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 10 },
    ),
  })
  .map(({ T, alignment, capacity, fastBandwidth, compute, buffers }) => {
    const accesses: Array<Array<{ buffer: string; bytes: number }>> = Array.from({ length: T }, () => []);
    const programBuffers = buffers.map((b, i) => {
      const start = b.startSeed % T;
      const end = start + 1 + (b.lengthSeed % (T - start));
      for (const use of b.uses) accesses[start + (use.at % (end - start))].push({ buffer: `b${i}`, bytes: use.bytes });
      return { id: `b${i}`, size: b.size, start, end };
    });
    return {
      name: 'arbitrary',
      memory: { fastCapacity: capacity, alignment, fastBandwidth, slowBandwidth: 1 },
      buffers: programBuffers,
      // Instruction 0 always has compute time ≥ 1, so the all-slow time is positive.
      instructions: accesses.map((list, i) => ({ computeTime: compute[i] + (i === 0 ? 1 : 0), accesses: list })),
    } satisfies MallocProgram;
  });

/** Compiled form of {@link programArbitrary}. */
export const compiledArbitrary: fc.Arbitrary<CompiledProgram> = programArbitrary.map(compileProgram);

/** Choice indices: step k takes the (choices[k] mod #legal)-th legal action. */
export const choicesArbitrary = fc.array(fc.nat(), { minLength: 12, maxLength: 12 });

/** The `choice`-th legal action of a mask (mod the number of legal actions). */
export function pickLegal(mask: Uint8Array, choice: number): number {
  let count = 0;
  for (let a = 0; a < mask.length; a++) count += mask[a];
  let target = choice % count;
  for (let a = 0; a < mask.length; a++) {
    if (mask[a] && target-- === 0) return a;
  }
  throw new Error('no legal action');
}
