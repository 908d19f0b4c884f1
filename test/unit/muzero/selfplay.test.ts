/** In-process self-play, episodes across the queue boundary, replay insertion by replaying actions, reanalyse. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { episodeObservations, MallocGame } from '../../../envs/malloc/game.js';
import { randomProgram, transformerProgram } from '../../../envs/malloc/generators.js';
import { compileProgram } from '../../../envs/malloc/program.js';
import { selectBackend } from '../../../models/backend.js';
import { MuZeroNetworks, resolveNetworkConfig, type InferenceBatch, type SearchModel } from '../../../models/muzero/networks.js';
import { resolveSearchConfig } from '../../../models/muzero/search.js';
import { MallocEpisodeSchema, selfPlayGames } from '../../../rollout/selfplay.js';
import { episodeToReplayInput } from '../../../trainer/muzero/episodes.js';
import { reanalyse } from '../../../trainer/muzero/reanalyse.js';
import { PrioritizedReplay } from '../../../trainer/muzero/replay.js';

const gameOptions = { candidates: 4, occupancyOffsetBins: 4, occupancyTimeBins: 4, lookahead: 2 };
const programs = [
  { id: 'random', program: compileProgram(randomProgram({ seed: 5, instructions: 9 })) },
  { id: 'transformer', program: compileProgram(transformerProgram({ seed: 5, layers: 1, seqLen: 32, dModel: 32, heads: 2 })) },
];
let net: MuZeroNetworks;

beforeAll(async () => {
  await selectBackend('cpu');
  const game = new MallocGame(programs[0].program, gameOptions);
  net = new MuZeroNetworks(
    resolveNetworkConfig({ observationSize: game.observationSize, numActions: game.numActions, stateSize: 8, hiddenSize: 16 }),
    3,
  );
});

afterAll(() => net.dispose());

/** Counts the batch size of every network call. */
class CountingModel implements SearchModel {
  calls: Array<[string, number]> = [];
  constructor(private readonly inner: SearchModel) {}
  get numActions() {
    return this.inner.numActions;
  }
  get stateSize() {
    return this.inner.stateSize;
  }
  initialInference(o: Float32Array, batch: number): Promise<InferenceBatch> {
    this.calls.push(['initial', batch]);
    return this.inner.initialInference(o, batch);
  }
  recurrentInference(s: Float32Array, a: Int32Array, batch: number): Promise<InferenceBatch> {
    this.calls.push(['recurrent', batch]);
    return this.inner.recurrentInference(s, a, batch);
  }
}

describe('selfPlayGames', () => {
  it('plays every program to the end and returns valid, replayable episodes (invariants 2, 3, 6)', async () => {
    for (const dynamics of ['learned', 'simulator'] as const) {
      const search = resolveSearchConfig({ simulations: 4, dynamics });
      const episodes = await selfPlayGames(net, programs, { search, game: gameOptions, policyVersion: 7 }, new Rng(1));
      expect(episodes.map((e) => e.programId)).toEqual(['random', 'transformer']);
      episodes.forEach((episode, i) => {
        const parsed = MallocEpisodeSchema.parse(JSON.parse(JSON.stringify(episode)));
        expect(parsed.policyVersion).toBe(7);
        const { program } = programs[i];
        expect(episode.actions).toHaveLength(program.bufferCount);
        const { legalMasks, rewards } = episodeObservations(program, gameOptions, episode.actions);
        expect(Array.from(rewards)).toEqual(episode.rewards);
        expect(episode.return).toBeCloseTo(
          episode.rewards.reduce((a, b) => a + b, 0),
          12,
        );
        expect(episode.return).toBeCloseTo((episode.allSlowTime - episode.finalTime) / episode.allSlowTime, 12);
        const A = episode.numActions;
        for (let t = 0; t < episode.actions.length; t++) {
          const row = episode.policies.slice(t * A, (t + 1) * A);
          expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
          for (let a = 0; a < A; a++) if (!legalMasks[t * A + a]) expect(row[a]).toBe(0);
        }
      });
    }
  });

  it('is reproducible for a seed', async () => {
    const search = resolveSearchConfig({ simulations: 3 });
    const a = await selfPlayGames(net, programs, { search, game: gameOptions }, new Rng(9));
    const b = await selfPlayGames(net, programs, { search, game: gameOptions }, new Rng(9));
    expect(b).toEqual(a);
  });

  it('makes one network call per simulation step for all games still running', async () => {
    const model = new CountingModel(net);
    await selfPlayGames(model, programs, { search: resolveSearchConfig({ simulations: 2 }), game: gameOptions }, new Rng(1));
    const [short, long] = [programs[0].program.bufferCount, programs[1].program.bufferCount].sort((x, y) => x - y);
    const expected: Array<[string, number]> = [];
    for (let move = 0; move < long; move++) {
      const live = move < short ? 2 : 1;
      expected.push(['initial', live], ['recurrent', live], ['recurrent', live]);
    }
    expect(model.calls).toEqual(expected);
  });
});

describe('episodes into replay, and reanalyse', () => {
  it('rebuilds observations by replay and refuses an episode that does not replay identically', async () => {
    const [episode] = await selfPlayGames(
      net,
      programs.slice(0, 1),
      { search: resolveSearchConfig({ simulations: 2 }), game: gameOptions },
      new Rng(2),
    );
    const input = episodeToReplayInput(episode, programs[0].program, gameOptions);
    const game = new MallocGame(programs[0].program, gameOptions);
    const first = new Float32Array(game.observationSize);
    game.observe(first);
    expect(Array.from(input.observations.subarray(0, first.length))).toEqual(Array.from(first));
    const other = compileProgram(randomProgram({ seed: 6, instructions: 9 }));
    expect(() => episodeToReplayInput(episode, other, gameOptions)).toThrow(TrainingError);
  });

  it('reanalyse re-searches stored positions with the latest networks and refreshes π, ν and z', async () => {
    const episodes = await selfPlayGames(net, programs, { search: resolveSearchConfig({ simulations: 2 }), game: gameOptions }, new Rng(3));
    const replay = new PrioritizedReplay(net.config.observationSize, net.config.numActions, { capacity: 500 });
    const ids = episodes.map((e, i) => replay.add(episodeToReplayInput(e, programs[i].program, gameOptions)));
    const before = Array.from(replay.episode(ids[0])!.rootValues);
    for (const dynamics of ['learned', 'simulator'] as const) {
      const count = await reanalyse(net, replay, [ids[0]], resolveSearchConfig({ simulations: 6, dynamics }), new Rng(4), {
        simulator: { programs: new Map(programs.map((p) => [p.id, p.program])), gameOptions },
      });
      expect(count).toBe(programs[0].program.bufferCount);
    }
    const after = replay.episode(ids[0])!;
    expect(after.reanalysed).toBe(2);
    expect(Array.from(after.rootValues)).not.toEqual(before);
    expect(replay.episode(ids[1])!.reanalysed).toBe(0);
    await expect(reanalyse(net, replay, [ids[1]], resolveSearchConfig({ dynamics: 'simulator' }), new Rng(1))).rejects.toThrow(
      /needs program "transformer"/,
    );
  });
});
