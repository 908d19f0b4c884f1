/**
 * The MuZero run's pure bookkeeping and program sets: game outcomes against the baseline, the window the
 * charts average over, staleness, reanalyse order, training-program refs from a config, and evaluation
 * of networks on programs (every mapping checked, speed-ups as T_base / T_agent − 1).
 */
import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { resolveConfig } from '../../../configs/resolve.js';
import { xlaLikeBaseline } from '../../../envs/malloc/baselines.js';
import { checkMapping } from '../../../envs/malloc/checker.js';
import { resolveGameOptions } from '../../../envs/malloc/game.js';
import { loadProgramFile } from '../../../envs/malloc/loaders.js';
import { selectBackend } from '../../../models/backend.js';
import type { MuZeroNetworks } from '../../../models/muzero/networks.js';
import { RecentGames, gameOutcome, pickForReanalyse, stalenessStats } from '../../../trainer/muzero/learner.js';
import { createRunNetworks, evalSearchConfig, evaluateMuZero } from '../../../trainer/muzero/evaluate.js';
import { expandProgramPaths, loadEvalPrograms, loadTrainingPrograms, trainingProgramRefs } from '../../../trainer/muzero/programs.js';
import { REPO } from '../../helpers/services.js';

const muzero = (extra: Record<string, unknown> = {}) =>
  resolveConfig(
    {
      algorithm: 'muzero',
      muzero: {
        game: { candidates: 4, occupancyOffsetBins: 4, occupancyTimeBins: 4, lookahead: 1 },
        network: { stateSize: 8, hiddenSize: 16, representationLayers: 1, dynamicsLayers: 1, predictionLayers: 1 },
        search: { simulations: 4, maxConsideredActions: 4 },
        programs: { generate: [{ count: 3, workload: { generator: 'random', seed: 10, instructions: 6 } }] },
        ...extra,
      },
    },
    { configDir: REPO },
  );

describe('game outcomes and the charts window', () => {
  it('scores a game against the baseline: speed-up T_base / T_agent − 1, success when T_agent ≤ T_base', () => {
    expect(gameOutcome({ return: 0.3, finalTime: 80, actions: [0, 1, 2] }, 100)).toEqual({
      return: 0.3,
      speedup: 0.25,
      success: 1,
      length: 3,
    });
    expect(gameOutcome({ return: 0.2, finalTime: 100, actions: [0] }, 100)).toMatchObject({ speedup: 0, success: 1 });
    const slower = gameOutcome({ return: 0.1, finalTime: 125, actions: [0] }, 100);
    expect(slower.speedup).toBeCloseTo(-0.2, 12);
    expect(slower.success).toBe(0);
  });

  it('averages over the newest `capacity` games only', () => {
    const recent = new RecentGames(3);
    expect(Number.isNaN(recent.mean('return'))).toBe(true);
    for (const r of [0.9, 0.1, 0.2, 0.3]) recent.push({ return: r, speedup: 0, success: r > 0.15 ? 1 : 0, length: 1 });
    expect(recent.size).toBe(3);
    expect(recent.mean('return')).toBeCloseTo(0.2, 12); // (0.1 + 0.2 + 0.3) / 3: the 0.9 fell out
    expect(recent.mean('success')).toBeCloseTo(2 / 3, 12);
    expect(() => new RecentGames(0)).toThrow(RangeError);
  });

  it('measures staleness as learner version − playing version', () => {
    expect(stalenessStats(10, [10, 8, 7])).toEqual({ mean: 5 / 3, max: 3 });
    expect(stalenessStats(4, [])).toBeUndefined();
  });

  it('reanalyses the least-refreshed games first, oldest first among equals', () => {
    const stored = [
      { id: 4, reanalysed: 1 },
      { id: 2, reanalysed: 0 },
      { id: 7, reanalysed: 0 },
      { id: 1, reanalysed: 2 },
    ];
    expect(pickForReanalyse(stored, 3)).toEqual([2, 7, 4]);
    expect(pickForReanalyse(stored, 10)).toEqual([2, 7, 4, 1]);
    expect(pickForReanalyse(stored, 0)).toEqual([]);
  });
});

describe('training programs of a config', () => {
  it('expands each generate entry to count seeds, id <generator>-s<seed>', () => {
    const refs = trainingProgramRefs(muzero());
    expect(refs.map((r) => r.id)).toEqual(['random-s10', 'random-s11', 'random-s12']);
    expect(refs.every((r) => 'workload' in r && r.workload.generator === 'random' && r.workload.instructions === 6)).toBe(true);
  });

  it('refuses two entries that make the same program', () => {
    const config = muzero({
      programs: {
        generate: [
          { count: 3, workload: { generator: 'random', seed: 0 } },
          { count: 2, workload: { generator: 'random', seed: 2, instructions: 9 } },
        ],
      },
    });
    expect(() => trainingProgramRefs(config)).toThrow(
      /muzero\.programs\.generate\[1\] makes program random-s2, which muzero\.programs\.generate\[0\] makes too/,
    );
  });

  it('reads files and directories relative to the config (a directory: its .json and .csv, not manifest.json)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'horizon-programs-'));
    copyFileSync(path.join(REPO, 'examples/data/malloc-sample.csv'), path.join(dir, 'b.csv'));
    copyFileSync(path.join(REPO, 'examples/data/malloc-program.json'), path.join(dir, 'a.json'));
    writeFileSync(path.join(dir, 'manifest.json'), '{"programs": []}');
    writeFileSync(path.join(dir, 'notes.txt'), 'not a program');
    expect(expandProgramPaths([dir], REPO).map((f) => path.basename(f))).toEqual(['a.json', 'b.csv']);
    expect(() => expandProgramPaths(['no/such/dir'], REPO)).toThrow(ConfigError);
    const config = resolveConfig(
      {
        algorithm: 'muzero',
        muzero: { programs: { generate: [], files: ['examples/data/malloc-sample.csv'], csvCapacityFraction: 0.25 } },
      },
      { configDir: REPO },
    );
    const [program] = loadTrainingPrograms(config);
    expect(program.ref).toEqual({
      id: 'examples/data/malloc-sample.csv',
      file: 'examples/data/malloc-sample.csv',
      csvCapacityFraction: 0.25,
    });
    expect(program.baselineTime).toBe(xlaLikeBaseline(program.program).time);
  });
});

describe('evaluation of networks on programs', () => {
  let networks: MuZeroNetworks;
  beforeAll(async () => {
    await selectBackend('cpu');
    networks = createRunNetworks(muzero());
  });
  afterAll(() => networks.dispose());

  it('plays every program, checks every mapping and reports speed-ups over the XLA-like baseline', async () => {
    const config = muzero();
    const programs = loadEvalPrograms({
      heldout: false,
      files: ['examples/data/malloc-sample.csv', 'examples/data/malloc-program.json'],
      baseDir: REPO,
      csvCapacityFraction: 0.5,
    });
    expect(programs.map((p) => p.id)).toEqual(['malloc-sample', 'two-instruction-example']);
    const search = evalSearchConfig(config);
    expect(search).toMatchObject({ gumbelScale: 0, rootExplorationFraction: 0, temperature: 0, simulations: 4 });
    const result = await evaluateMuZero(networks, programs, { search, game: resolveGameOptions(config.muzero.game), seed: 1 });
    expect(result.valid).toBe(2);
    result.rows.forEach((row, i) => {
      const { program } = programs[i];
      expect(checkMapping(program, result.mappings[i]).ok).toBe(true);
      expect(row.baselineTime).toBe(xlaLikeBaseline(program).time);
      expect(row.speedup).toBeCloseTo(row.baselineTime / row.agentTime - 1, 12);
    });
    // The hand-computed example (docs/mallocmuzero.md): all slow 24, XLA-like 15, optimum 12.
    expect(result.rows[1].baselineTime).toBe(15);
    expect(result.rows[1].agentTime).toBeGreaterThanOrEqual(12);
    expect(result.rows[1].agentTime).toBeLessThanOrEqual(24);
    expect(result.summary.programs).toBe(2);
    // Evaluation without noise is repeatable.
    const again = await evaluateMuZero(networks, programs, { search, game: resolveGameOptions(config.muzero.game), seed: 2 });
    expect(again.mappings).toEqual(result.mappings);
  });

  it('takes the first maxPrograms of the held-out set', () => {
    const programs = loadEvalPrograms({ heldout: true, files: [], baseDir: REPO, csvCapacityFraction: 0.5, maxPrograms: 2 });
    expect(programs.map((p) => p.id)).toEqual(['transformer-00', 'transformer-01']);
    expect(loadProgramFile(path.join(REPO, 'data/malloc/heldout/transformer-00.json')).compiled.bufferCount).toBe(
      programs[0].program.bufferCount,
    );
  });
});
