/**
 * Synthetic workloads (spec "Workloads"): transformer-block-like, conv-net-like and random schedules.
 * Each generator is a pure function of its options (sizes and capacity are knobs; `seed` fixes the
 * random parts), returning a {@link MallocProgram}.
 *
 * Default machine model (time unit: nanosecond-like): slow memory 1,000 bytes per time unit, fast
 * memory 8,000, compute 100,000 FLOP per time unit at full efficiency; each instruction runs at an
 * efficiency drawn from [0.5, 1], so some matmuls are compute-bound and all element-wise operations
 * are memory-bound. Fast capacity = `capacityFraction` × the program's peak live bytes (rounded down
 * to α), so at 0.5 roughly half of what is live at the busiest instruction fits.
 */
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { compileProgram } from './program.js';
import type { MallocProgram, MemorySpec, ProgramAccess, ProgramBuffer, ProgramInstruction } from './types.js';

/** FLOP per time unit at full efficiency. */
export const PEAK_FLOPS_PER_TIME_UNIT = 100_000;

/** Memory knobs shared by every generator. */
const MemoryKnobs = {
  capacityFraction: z.number().gt(0).max(1).default(0.5).describe('Fast capacity as a share of the peak live bytes.'),
  alignment: z.number().int().min(1).default(64).describe('α, bytes.'),
  fastBandwidth: z.number().positive().default(8000).describe('BW_fast, bytes per time unit.'),
  slowBandwidth: z.number().positive().default(1000).describe('BW_slow, bytes per time unit.'),
};

/** Options of {@link transformerProgram}: `layers` blocks of pre-norm attention + MLP. 22 buffers per layer + 1. */
export const TransformerProgramSchema = z
  .object({
    generator: z.literal('transformer'),
    seed: z.number().int().default(0),
    layers: z.number().int().min(1).max(200).default(4),
    seqLen: z.number().int().min(1).default(256),
    dModel: z.number().int().min(1).default(256),
    heads: z.number().int().min(1).default(4),
    ffnMultiplier: z.number().int().min(1).default(4),
    bytesPerElement: z.number().int().min(1).default(2),
    weightPrefetch: z
      .number()
      .int()
      .min(0)
      .default(2)
      .describe('Instructions before its use that a weight becomes live (prefetch window).'),
    ...MemoryKnobs,
  })
  .strict();

/** Options of {@link convNetProgram}: a residual conv net, `stages` × `blocksPerStage` blocks. */
export const ConvNetProgramSchema = z
  .object({
    generator: z.literal('convnet'),
    seed: z.number().int().default(0),
    stages: z.number().int().min(1).max(8).default(3),
    blocksPerStage: z.number().int().min(1).max(64).default(2),
    imageSize: z.number().int().min(1).default(32),
    channels: z.number().int().min(1).default(32),
    batch: z.number().int().min(1).default(8),
    bytesPerElement: z.number().int().min(1).default(2),
    weightPrefetch: z.number().int().min(0).default(2),
    ...MemoryKnobs,
  })
  .strict();

/** Options of {@link randomProgram}: each instruction writes one buffer and reads up to `maxInputs` earlier ones. */
export const RandomProgramSchema = z
  .object({
    generator: z.literal('random'),
    seed: z.number().int().default(0),
    instructions: z.number().int().min(1).max(100_000).default(100).describe('T; also the number of buffers.'),
    minSize: z.number().int().min(1).default(4096),
    maxSize: z
      .number()
      .int()
      .min(1)
      .default(1 << 20),
    maxInputs: z.number().int().min(1).max(16).default(3),
    recency: z
      .number()
      .min(0)
      .max(1)
      .default(0.8)
      .describe('Probability that an input is one of the few most recent buffers (else any earlier one).'),
    computeIntensity: z.number().min(0).default(1).describe('Mean compute time as a multiple of the instruction’s all-slow memory time.'),
    ...MemoryKnobs,
  })
  .strict();

/** Any generator's options, told apart by `generator`. */
export const WorkloadSchema = z.discriminatedUnion('generator', [TransformerProgramSchema, ConvNetProgramSchema, RandomProgramSchema]);
export type TransformerProgramOptions = z.output<typeof TransformerProgramSchema>;
export type ConvNetProgramOptions = z.output<typeof ConvNetProgramSchema>;
export type RandomProgramOptions = z.output<typeof RandomProgramSchema>;
export type WorkloadOptions = z.output<typeof WorkloadSchema>;
/** What callers write: `generator` plus any knobs (defaults fill the rest). */
export type WorkloadInput = z.input<typeof WorkloadSchema>;

/** Generate the program `input` describes (name: `<generator>-s<seed>` unless given). */
export function generateProgram(input: WorkloadInput, name?: string): MallocProgram {
  const parsed = WorkloadSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`workload ${issue.path.join('.') || '(root)'}: ${issue.message}`, { context: { path: issue.path } });
  }
  const options = parsed.data;
  switch (options.generator) {
    case 'transformer':
      return transformerProgram(options, name);
    case 'convnet':
      return convNetProgram(options, name);
    case 'random':
      return randomProgram(options, name);
  }
}

/** Accumulates buffers and instructions; live ranges follow from the accesses (plus weight prefetch). */
class ProgramBuilder {
  private readonly buffers: Array<{ id: string; size: number }> = [];
  private readonly prefetch = new Map<string, number>();
  private readonly instructions: ProgramInstruction[] = [];
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Declare a buffer; `prefetch` ≥ 0 makes it live that many instructions before its first use. */
  buffer(id: string, bytes: number, prefetch?: number): string {
    this.buffers.push({ id, size: bytes });
    if (prefetch !== undefined) this.prefetch.set(id, prefetch);
    return id;
  }

  /** Schedule an instruction doing `flops` of work that reads and writes whole buffers. */
  op(name: string, flops: number, reads: readonly string[], writes: readonly string[]): void {
    const efficiency = 0.5 + 0.5 * this.rng.next();
    const accesses: ProgramAccess[] = [...reads, ...writes].map((buffer) => ({ buffer }));
    this.instructions.push({ name, computeTime: round3(flops / (PEAK_FLOPS_PER_TIME_UNIT * efficiency)), accesses });
  }

  /** Finish: live ranges of prefetched buffers, then fast memory sized from the peak live bytes. */
  build(name: string, knobs: MemoryKnobValues): MallocProgram {
    const firstUse = new Map<string, number>();
    const lastUse = new Map<string, number>();
    this.instructions.forEach((instruction, i) => {
      for (const access of instruction.accesses) {
        if (!firstUse.has(access.buffer)) firstUse.set(access.buffer, i);
        lastUse.set(access.buffer, i);
      }
    });
    const buffers: ProgramBuffer[] = this.buffers.map(({ id, size }) => {
      const prefetch = this.prefetch.get(id);
      if (prefetch === undefined) return { id, size };
      const first = firstUse.get(id) as number;
      return { id, size, start: Math.max(0, first - prefetch), end: (lastUse.get(id) as number) + 1 };
    });
    return withCapacity({ name, memory: draftMemory(knobs), buffers, instructions: this.instructions }, knobs);
  }
}

type MemoryKnobValues = { capacityFraction: number; alignment: number; fastBandwidth: number; slowBandwidth: number };

function draftMemory(knobs: MemoryKnobValues): MemorySpec {
  return {
    fastCapacity: knobs.alignment,
    alignment: knobs.alignment,
    fastBandwidth: knobs.fastBandwidth,
    slowBandwidth: knobs.slowBandwidth,
  };
}

/** Set fast capacity to capacityFraction × peak live bytes, rounded down to α (at least α). */
function withCapacity(draft: MallocProgram, knobs: MemoryKnobValues): MallocProgram {
  const peak = compileProgram(draft).peakLiveBytes;
  const fastCapacity = Math.max(knobs.alignment, Math.floor((knobs.capacityFraction * peak) / knobs.alignment) * knobs.alignment);
  return { ...draft, memory: { ...draft.memory, fastCapacity } };
}

/**
 * A stack of pre-norm transformer blocks over a [seqLen, dModel] activation:
 * LN → Q, K, V projections → scores = Q·Kᵀ (all heads) → softmax → context → output projection →
 * residual add → LN → up projection → GELU → down projection → residual add. Weights become live
 * `weightPrefetch` instructions before their matmul; activations live from producer to last consumer.
 */
export function transformerProgram(input: Partial<TransformerProgramOptions>, name?: string): MallocProgram {
  const o = TransformerProgramSchema.parse({ ...input, generator: 'transformer' });
  const { seqLen: S, dModel: d, heads: h, bytesPerElement: e } = o;
  const f = d * o.ffnMultiplier;
  const g = new ProgramBuilder(o.seed);
  let x = g.buffer('embed.out', S * d * e);
  g.op('embed', S * d, [], [x]);
  for (let l = 0; l < o.layers; l++) {
    const p = `l${l}`;
    const w = (id: string, bytes: number) => g.buffer(`${p}.${id}`, bytes, o.weightPrefetch);
    const a = (id: string, bytes: number) => g.buffer(`${p}.${id}`, bytes);
    const ln1Scale = w('ln1.scale', d * e);
    const ln1 = a('ln1', S * d * e);
    g.op(`${p}.ln1`, 8 * S * d, [x, ln1Scale], [ln1]);
    const qkv = ['q', 'k', 'v'].map((name) => {
      const weight = w(`w${name}`, d * d * e);
      const out = a(name, S * d * e);
      g.op(`${p}.${name}_proj`, 2 * S * d * d, [ln1, weight], [out]);
      return out;
    });
    const scores = a('scores', h * S * S * e);
    g.op(`${p}.scores`, 2 * S * S * d, [qkv[0], qkv[1]], [scores]);
    const probs = a('probs', h * S * S * e);
    g.op(`${p}.softmax`, 5 * h * S * S, [scores], [probs]);
    const ctx = a('ctx', S * d * e);
    g.op(`${p}.context`, 2 * S * S * d, [probs, qkv[2]], [ctx]);
    const wo = w('wo', d * d * e);
    const attnOut = a('attn_out', S * d * e);
    g.op(`${p}.o_proj`, 2 * S * d * d, [ctx, wo], [attnOut]);
    const x2 = a('resid1', S * d * e);
    g.op(`${p}.add1`, S * d, [x, attnOut], [x2]);
    const ln2Scale = w('ln2.scale', d * e);
    const ln2 = a('ln2', S * d * e);
    g.op(`${p}.ln2`, 8 * S * d, [x2, ln2Scale], [ln2]);
    const w1 = w('w_up', d * f * e);
    const up = a('up', S * f * e);
    g.op(`${p}.up_proj`, 2 * S * d * f, [ln2, w1], [up]);
    const act = a('gelu', S * f * e);
    g.op(`${p}.gelu`, 8 * S * f, [up], [act]);
    const w2 = w('w_down', f * d * e);
    const down = a('down', S * d * e);
    g.op(`${p}.down_proj`, 2 * S * f * d, [act, w2], [down]);
    const x3 = a('resid2', S * d * e);
    g.op(`${p}.add2`, S * d, [x2, down], [x3]);
    x = x3;
  }
  return g.build(name ?? `transformer-s${o.seed}`, o);
}

/**
 * A residual conv net on [batch, imageSize, imageSize, channels] activations: a 3×3 stem, then `stages`
 * stages of `blocksPerStage` basic blocks (3×3 conv → BN+ReLU → 3×3 conv → add skip → ReLU); the first
 * block of every later stage halves the resolution, doubles the channels and projects the skip with a
 * 1×1 conv; global pooling and a 1000-way classifier at the end.
 */
export function convNetProgram(input: Partial<ConvNetProgramOptions>, name?: string): MallocProgram {
  const o = ConvNetProgramSchema.parse({ ...input, generator: 'convnet' });
  const e = o.bytesPerElement;
  const B = o.batch;
  const g = new ProgramBuilder(o.seed);
  let hw = o.imageSize;
  let c = o.channels;
  const image = g.buffer('image', B * hw * hw * 3 * e);
  g.op('load', B * hw * hw * 3, [], [image]);
  const stemW = g.buffer('stem.w', 3 * 3 * 3 * c * e, o.weightPrefetch);
  let x = g.buffer('stem.out', B * hw * hw * c * e);
  g.op('stem.conv', 2 * B * hw * hw * c * 3 * 9, [image, stemW], [x]);
  for (let s = 0; s < o.stages; s++) {
    for (let k = 0; k < o.blocksPerStage; k++) {
      const p = `s${s}b${k}`;
      const downsample = s > 0 && k === 0;
      const inC = c;
      if (downsample) {
        c *= 2;
        hw = Math.max(1, Math.ceil(hw / 2));
      }
      const act = B * hw * hw * c * e;
      const w1 = g.buffer(`${p}.conv1.w`, 9 * inC * c * e, o.weightPrefetch);
      const c1 = g.buffer(`${p}.conv1`, act);
      g.op(`${p}.conv1`, 2 * B * hw * hw * c * inC * 9, [x, w1], [c1]);
      const r1 = g.buffer(`${p}.relu1`, act);
      g.op(`${p}.bn_relu1`, 4 * B * hw * hw * c, [c1], [r1]);
      const w2 = g.buffer(`${p}.conv2.w`, 9 * c * c * e, o.weightPrefetch);
      const c2 = g.buffer(`${p}.conv2`, act);
      g.op(`${p}.conv2`, 2 * B * hw * hw * c * c * 9, [r1, w2], [c2]);
      let skip = x;
      if (downsample) {
        const wp = g.buffer(`${p}.proj.w`, inC * c * e, o.weightPrefetch);
        skip = g.buffer(`${p}.proj`, act);
        g.op(`${p}.proj`, 2 * B * hw * hw * c * inC, [x, wp], [skip]);
      }
      const out = g.buffer(`${p}.out`, act);
      g.op(`${p}.add_relu`, 3 * B * hw * hw * c, [c2, skip], [out]);
      x = out;
    }
  }
  const pooled = g.buffer('pool', B * c * e);
  g.op('pool', B * hw * hw * c, [x], [pooled]);
  const fcW = g.buffer('fc.w', c * 1000 * e, o.weightPrefetch);
  const logits = g.buffer('logits', B * 1000 * e);
  g.op('fc', 2 * B * c * 1000, [pooled, fcW], [logits]);
  return g.build(name ?? `convnet-s${o.seed}`, o);
}

/**
 * A random schedule: instruction i writes buffer `t<i>` (size log-uniform in [minSize, maxSize]) and
 * reads 1..maxInputs distinct earlier buffers — with probability `recency` one of the 4 most recent,
 * otherwise any earlier one (which makes some buffers long-lived). Compute time = its all-slow memory
 * time × U(0, 2·computeIntensity), so instructions range from memory- to compute-bound.
 */
export function randomProgram(input: Partial<RandomProgramOptions>, name?: string): MallocProgram {
  const o = RandomProgramSchema.parse({ ...input, generator: 'random' });
  if (o.maxSize < o.minSize) throw new ConfigError(`random workload: maxSize (${o.maxSize}) must be ≥ minSize (${o.minSize})`);
  const rng = new Rng(o.seed);
  const buffers: ProgramBuffer[] = [];
  const instructions: ProgramInstruction[] = [];
  const logMin = Math.log(o.minSize);
  const logMax = Math.log(o.maxSize);
  for (let i = 0; i < o.instructions; i++) {
    const size = Math.round(Math.exp(logMin + (logMax - logMin) * rng.next()));
    const id = `t${i}`;
    buffers.push({ id, size });
    const inputs = new Set<number>();
    const want = i === 0 ? 0 : 1 + rng.int(Math.min(o.maxInputs, i));
    for (let tries = 0; inputs.size < want && tries < 4 * want; tries++) {
      inputs.add(rng.next() < o.recency ? i - 1 - rng.int(Math.min(4, i)) : rng.int(i));
    }
    const reads = [...inputs].sort((a, b) => a - b);
    const bytes = size + reads.reduce((sum, j) => sum + buffers[j].size, 0);
    const computeTime = round3((bytes / o.slowBandwidth) * 2 * o.computeIntensity * rng.next());
    instructions.push({ name: `op${i}`, computeTime, accesses: [...reads.map((j) => ({ buffer: `t${j}` })), { buffer: id }] });
  }
  return withCapacity({ name: name ?? `random-s${o.seed}`, memory: draftMemory(o), buffers, instructions }, o);
}

/** Round to 3 decimals, so generated files stay short and read back to the same numbers. */
function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
