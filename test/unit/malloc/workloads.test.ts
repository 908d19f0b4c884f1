/** Generators, loaders (good and bad input) and the committed held-out set. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { convNetProgram, generateProgram, randomProgram, transformerProgram } from '../../../envs/malloc/generators.js';
import { HELDOUT_DIR, HELDOUT_SET, heldoutFiles, loadHeldoutSet } from '../../../envs/malloc/heldout.js';
import { loadProgramFile, parseMiniMallocCsv, parseProgramJson, programToJson } from '../../../envs/malloc/loaders.js';
import { compileProgram } from '../../../envs/malloc/program.js';

describe('workload generators', () => {
  it('are pure functions of their options: same seed, same program; another seed, another one', () => {
    expect(programToJson(transformerProgram({ seed: 3, layers: 2 }))).toBe(programToJson(transformerProgram({ seed: 3, layers: 2 })));
    expect(programToJson(randomProgram({ seed: 3 }))).not.toBe(programToJson(randomProgram({ seed: 4 })));
    expect(programToJson(convNetProgram({ seed: 5 }))).toBe(
      programToJson(generateProgram({ generator: 'convnet', seed: 5 }, 'convnet-s5')),
    );
  });

  it('have the documented sizes: 1 + 22·layers, 6 + 6·blocks + 2·(stages − 1), T buffers for random', () => {
    expect(compileProgram(transformerProgram({ layers: 9 })).bufferCount).toBe(199);
    expect(compileProgram(convNetProgram({ stages: 3, blocksPerStage: 5 })).bufferCount).toBe(6 + 6 * 15 + 2 * 2);
    const random = compileProgram(randomProgram({ instructions: 57 }));
    expect(random.bufferCount).toBe(57);
    expect(random.instructionCount).toBe(57);
  });

  it('size fast memory as capacityFraction × peak live bytes, rounded down to α', () => {
    for (const fraction of [0.3, 0.5, 0.7]) {
      const p = compileProgram(randomProgram({ seed: 1, capacityFraction: fraction, alignment: 256 }));
      expect(p.capacity % 256).toBe(0);
      expect(p.capacity).toBeLessThanOrEqual(fraction * p.peakLiveBytes);
      expect(p.capacity).toBeGreaterThan(fraction * p.peakLiveBytes - 256);
    }
  });

  it('starts weights weightPrefetch instructions before their first use', () => {
    const program = transformerProgram({ layers: 1, weightPrefetch: 2 });
    const wq = program.buffers.find((b) => b.id === 'l0.wq')!;
    const use = program.instructions.findIndex((i) => i.accesses.some((a) => a.buffer === 'l0.wq'));
    expect(wq.start).toBe(use - 2);
    expect(wq.end).toBe(use + 1);
  });

  it('rejects bad knobs naming the field', () => {
    expect(() => generateProgram({ generator: 'random', instructions: 0 })).toThrow(/workload instructions/);
    expect(() => generateProgram({ generator: 'transformer', capacityFraction: 2 } as never)).toThrow(ConfigError);
    expect(() => randomProgram({ minSize: 10, maxSize: 5 })).toThrow(/maxSize/);
  });
});

describe('MiniMalloc CSV loader', () => {
  it('compresses time, writes at the first and reads at the last instruction of each live range', () => {
    const program = parseMiniMallocCsv('id,lower,upper,size\nx,0,10,8\ny,10,30,4\nz,5,30,4\n', { fastCapacity: 12 }, 'three.csv');
    expect(program.name).toBe('three');
    // Points 0, 5, 10, 30 → instructions [0,5), [5,10), [10,30).
    expect(program.buffers).toEqual([
      { id: 'x', size: 8, start: 0, end: 2 },
      { id: 'y', size: 4, start: 2, end: 3 },
      { id: 'z', size: 4, start: 1, end: 3 },
    ]);
    expect(program.instructions.map((i) => i.accesses)).toEqual([
      [{ buffer: 'x', bytes: 8 }],
      [
        { buffer: 'x', bytes: 8 },
        { buffer: 'z', bytes: 4 },
      ],
      [
        { buffer: 'y', bytes: 4 },
        { buffer: 'y', bytes: 4 },
        { buffer: 'z', bytes: 4 },
      ],
    ]);
    expect(program.memory).toEqual({ fastCapacity: 12, alignment: 1, fastBandwidth: 8000, slowBandwidth: 1000 });
    // Without fastCapacity: half the peak live bytes (peak 12 at instruction 1).
    expect(parseMiniMallocCsv('id,lower,upper,size\nx,0,10,8\ny,10,30,4\nz,5,30,4\n').memory.fastCapacity).toBe(6);
  });

  it('ignores extra columns such as a solution offset, and blank lines', () => {
    const program = parseMiniMallocCsv('id,lower,upper,size,offset\r\nb1,0,3,4,0\r\n\r\nb2,3,9,4,0\r\n');
    expect(program.buffers.map((b) => b.id)).toEqual(['b1', 'b2']);
  });

  it('loads the example file', () => {
    const { compiled } = loadProgramFile('examples/data/malloc-sample.csv');
    expect(compiled.bufferCount).toBe(7);
    expect(compiled.instructionCount).toBe(10);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['empty', '', /the file is empty; expected the header "id,lower,upper,size"/],
    [
      'wrong header',
      'buffer,start,end,size\nb,0,1,1\n',
      /line 1: header is "buffer,start,end,size"; a MiniMalloc CSV starts with "id,lower,upper,size"/,
    ],
    ['non-numeric size', 'id,lower,upper,size\na,0,1,4\nb,0,2,abc\n', /bad\.csv line 3: size = "abc": size must be a number/],
    ['fractional lower', 'id,lower,upper,size\na,0.5,1,4\n', /line 2: lower = "0\.5": lower must be a whole number/],
    ['empty range', 'id,lower,upper,size\na,3,3,4\n', /line 2: upper = "3": upper must be > lower/],
    ['zero size', 'id,lower,upper,size\na,0,3,0\n', /line 2: size = "0": size must be ≥ 1/],
    ['duplicate id', 'id,lower,upper,size\na,0,3,4\na,1,2,4\n', /line 3: id "a" already used on line 2/],
    ['missing column', 'id,lower,upper,size\na,0,3\n', /line 2: 3 columns, the header has 4/],
    ['no rows', 'id,lower,upper,size\n\n', /no buffers after the header/],
  ];
  for (const [label, text, message] of bad) {
    it(`rejects ${label} with a ConfigError naming the line and field`, () => {
      expect(() => parseMiniMallocCsv(text, {}, 'bad.csv')).toThrow(ConfigError);
      expect(() => parseMiniMallocCsv(text, {}, 'bad.csv')).toThrow(message);
    });
  }
});

describe('JSON program loader', () => {
  it('round-trips programToJson and loads the example', () => {
    const program = transformerProgram({ layers: 1, seed: 9 });
    expect(parseProgramJson(programToJson(program))).toEqual(program);
    expect(loadProgramFile('examples/data/malloc-program.json').compiled.bufferCount).toBe(3);
  });

  const base = {
    name: 'p',
    memory: { fastCapacity: 64, alignment: 4, fastBandwidth: 4, slowBandwidth: 1 },
    buffers: [{ id: 'a', size: 8 }],
    instructions: [{ computeTime: 1, accesses: [{ buffer: 'a' }] }],
  };
  const bad: Array<[string, unknown, RegExp]> = [
    ['invalid JSON', '{"name": ', /p\.json: not valid JSON/],
    ['a missing field', { ...base, memory: { ...base.memory, fastCapacity: undefined } }, /p\.json: memory\.fastCapacity: /],
    [
      'a negative compute time',
      { ...base, instructions: [{ computeTime: -1, accesses: [] }] },
      /p\.json: instructions\[0\]\.computeTime: computeTime must be ≥ 0/,
    ],
    ['an unknown field', { ...base, extra: 1 }, /p\.json: \(top level\): .*extra/],
    [
      'an unknown buffer',
      { ...base, instructions: [{ computeTime: 1, accesses: [{ buffer: 'zz' }] }] },
      /instructions\[0\]\.accesses\[0\]\.buffer "zz" is not one of the program's buffers/,
    ],
    [
      'a live range missing an access',
      {
        ...base,
        buffers: [{ id: 'a', size: 8, start: 0, end: 1 }],
        instructions: [
          { computeTime: 1, accesses: [] },
          { computeTime: 1, accesses: [{ buffer: 'a' }] },
        ],
      },
      /has live range \[0, 1\) but is accessed at instructions 1\.\.1/,
    ],
    [
      'fast slower than slow',
      { ...base, memory: { ...base.memory, fastBandwidth: 0.5 } },
      /memory\.fastBandwidth must be finite and ≥ memory\.slowBandwidth/,
    ],
    [
      'a buffer never accessed and without a range',
      { ...base, buffers: [...base.buffers, { id: 'b', size: 4 }] },
      /buffers\[1\] \("b"\) is never accessed, so it needs an explicit start and end/,
    ],
  ];
  for (const [label, value, message] of bad) {
    it(`rejects ${label} with a ConfigError naming the field`, () => {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      expect(() => parseProgramJson(text, 'p.json')).toThrow(ConfigError);
      expect(() => parseProgramJson(text, 'p.json')).toThrow(message);
    });
  }

  it('rejects an unknown file extension', () => {
    expect(() => loadProgramFile('examples/my-env.ts')).toThrow(/unknown extension "\.ts"/);
  });
});

describe('held-out benchmark set (data/malloc/heldout)', () => {
  it('the committed files equal the regenerated ones, byte for byte', () => {
    const expected = heldoutFiles();
    expect(readdirSync(HELDOUT_DIR).sort()).toEqual([...expected.keys()].sort());
    for (const [file, text] of expected) expect(readFileSync(join(HELDOUT_DIR, file), 'utf8'), file).toBe(text);
  });

  it('holds 24 valid programs, 8 per generator, 18–204 buffers', () => {
    const set = loadHeldoutSet();
    expect(set).toHaveLength(24);
    expect(HELDOUT_SET.filter((e) => e.workload.generator === 'transformer')).toHaveLength(8);
    expect(HELDOUT_SET.filter((e) => e.workload.generator === 'convnet')).toHaveLength(8);
    const sizes = set.map((p) => p.compiled.bufferCount);
    expect(Math.min(...sizes)).toBe(18);
    expect(Math.max(...sizes)).toBe(204);
    expect(HELDOUT_SET.every((e) => (e.workload.seed ?? 0) >= 1000)).toBe(true);
  });
});
