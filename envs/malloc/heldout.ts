/**
 * The fixed held-out benchmark: 24 programs (8 per generator, 18–204 buffers, capacity 30–70 % of the
 * peak live bytes) committed as JSON under data/malloc/heldout/. The files are a pure function of
 * {@link HELDOUT_SET}; `writeHeldoutSet()` regenerates them byte for byte, and a test checks that the
 * committed files equal the regenerated ones. Held-out seeds are ≥ 1000: train on seeds below that.
 *
 *   npx tsx -e "import('./envs/malloc/heldout.ts').then((m) => m.writeHeldoutSet())"
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProgram, type WorkloadInput } from './generators.js';
import { parseProgramJson, programToJson } from './loaders.js';
import { compileProgram } from './program.js';
import type { CompiledProgram, MallocProgram } from './types.js';

/** Where the committed set lives (repository-relative data/malloc/heldout/). */
export const HELDOUT_DIR = fileURLToPath(new URL('../../data/malloc/heldout/', import.meta.url));

/** One held-out program: its file name (without .json) and the generator call that produced it. */
export interface HeldoutEntry {
  readonly name: string;
  readonly workload: WorkloadInput;
}

/** The 24 held-out programs. Changing this list changes the benchmark: regenerate and say so. */
export const HELDOUT_SET: readonly HeldoutEntry[] = [
  {
    name: 'transformer-00',
    workload: { generator: 'transformer', seed: 1000, layers: 1, seqLen: 128, dModel: 128, heads: 2, capacityFraction: 0.5 },
  },
  {
    name: 'transformer-01',
    workload: { generator: 'transformer', seed: 1001, layers: 2, seqLen: 256, dModel: 128, heads: 4, capacityFraction: 0.3 },
  },
  {
    name: 'transformer-02',
    workload: { generator: 'transformer', seed: 1002, layers: 3, seqLen: 128, dModel: 256, heads: 4, capacityFraction: 0.7 },
  },
  {
    name: 'transformer-03',
    workload: { generator: 'transformer', seed: 1003, layers: 4, seqLen: 512, dModel: 256, heads: 8, capacityFraction: 0.5 },
  },
  {
    name: 'transformer-04',
    workload: { generator: 'transformer', seed: 1004, layers: 5, seqLen: 256, dModel: 384, heads: 6, capacityFraction: 0.4 },
  },
  {
    name: 'transformer-05',
    workload: { generator: 'transformer', seed: 1005, layers: 6, seqLen: 128, dModel: 512, heads: 8, capacityFraction: 0.6 },
  },
  {
    name: 'transformer-06',
    workload: { generator: 'transformer', seed: 1006, layers: 7, seqLen: 256, dModel: 256, heads: 4, capacityFraction: 0.3 },
  },
  {
    name: 'transformer-07',
    workload: { generator: 'transformer', seed: 1007, layers: 9, seqLen: 512, dModel: 128, heads: 2, capacityFraction: 0.5 },
  },
  {
    name: 'convnet-00',
    workload: { generator: 'convnet', seed: 1100, stages: 1, blocksPerStage: 2, imageSize: 32, channels: 16, capacityFraction: 0.5 },
  },
  {
    name: 'convnet-01',
    workload: { generator: 'convnet', seed: 1101, stages: 2, blocksPerStage: 2, imageSize: 64, channels: 16, capacityFraction: 0.3 },
  },
  {
    name: 'convnet-02',
    workload: { generator: 'convnet', seed: 1102, stages: 2, blocksPerStage: 4, imageSize: 32, channels: 32, capacityFraction: 0.6 },
  },
  {
    name: 'convnet-03',
    workload: { generator: 'convnet', seed: 1103, stages: 3, blocksPerStage: 3, imageSize: 64, channels: 32, capacityFraction: 0.5 },
  },
  {
    name: 'convnet-04',
    workload: { generator: 'convnet', seed: 1104, stages: 3, blocksPerStage: 5, imageSize: 32, channels: 64, capacityFraction: 0.4 },
  },
  {
    name: 'convnet-05',
    workload: { generator: 'convnet', seed: 1105, stages: 4, blocksPerStage: 4, imageSize: 64, channels: 16, capacityFraction: 0.7 },
  },
  {
    name: 'convnet-06',
    workload: { generator: 'convnet', seed: 1106, stages: 4, blocksPerStage: 6, imageSize: 32, channels: 32, capacityFraction: 0.3 },
  },
  {
    name: 'convnet-07',
    workload: { generator: 'convnet', seed: 1107, stages: 4, blocksPerStage: 8, imageSize: 64, channels: 16, capacityFraction: 0.5 },
  },
  { name: 'random-00', workload: { generator: 'random', seed: 1200, instructions: 24, capacityFraction: 0.5 } },
  { name: 'random-01', workload: { generator: 'random', seed: 1201, instructions: 48, capacityFraction: 0.3 } },
  { name: 'random-02', workload: { generator: 'random', seed: 1202, instructions: 72, capacityFraction: 0.7, maxInputs: 2 } },
  { name: 'random-03', workload: { generator: 'random', seed: 1203, instructions: 96, capacityFraction: 0.5, recency: 0.6 } },
  { name: 'random-04', workload: { generator: 'random', seed: 1204, instructions: 120, capacityFraction: 0.4, computeIntensity: 0.5 } },
  { name: 'random-05', workload: { generator: 'random', seed: 1205, instructions: 150, capacityFraction: 0.6, maxInputs: 4 } },
  { name: 'random-06', workload: { generator: 'random', seed: 1206, instructions: 180, capacityFraction: 0.3, recency: 0.9 } },
  { name: 'random-07', workload: { generator: 'random', seed: 1207, instructions: 200, capacityFraction: 0.5, computeIntensity: 1.5 } },
];

/** The held-out programs, generated (not read from disk). */
export function generateHeldoutPrograms(): Array<{ name: string; program: MallocProgram }> {
  return HELDOUT_SET.map((entry) => ({ name: entry.name, program: generateProgram(entry.workload, entry.name) }));
}

/** File name → exact file contents of the held-out set, manifest.json included. */
export function heldoutFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const { name, program } of generateHeldoutPrograms()) files.set(`${name}.json`, programToJson(program));
  const manifest = HELDOUT_SET.map((entry) => `    ${JSON.stringify({ file: `${entry.name}.json`, workload: entry.workload })}`);
  files.set('manifest.json', `{\n  "programs": [\n${manifest.join(',\n')}\n  ]\n}\n`);
  return files;
}

/** Regenerate the committed files into `dir` (default {@link HELDOUT_DIR}); returns the paths written. */
export function writeHeldoutSet(dir = HELDOUT_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [file, text] of heldoutFiles()) {
    const path = join(dir, file);
    writeFileSync(path, text);
    written.push(path);
  }
  return written;
}

/** Read the committed held-out programs from `dir`, in {@link HELDOUT_SET} order, validated and compiled. */
export function loadHeldoutSet(dir = HELDOUT_DIR): Array<{ name: string; program: MallocProgram; compiled: CompiledProgram }> {
  return HELDOUT_SET.map(({ name }) => {
    const path = join(dir, `${name}.json`);
    const program = parseProgramJson(readFileSync(path, 'utf8'), path);
    return { name, program, compiled: compileProgram(program) };
  });
}
