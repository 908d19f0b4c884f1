/**
 * A small end-to-end learning check: MuZero (learned dynamics, Gumbel search) trained in process on a
 * 5-buffer program improves over its initial return after a few dozen updates. The networks start
 * with a handicap — the policy head's bias favours SLOW, so the untrained agent keeps everything in
 * slow memory (return 0) — and must learn from its own games that placing buffers pays. Seeded and on
 * the cpu backend, so the run is the same every time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { exactGameOptimum } from '../../../envs/malloc/baselines.js';
import { MallocGame } from '../../../envs/malloc/game.js';
import { randomProgram } from '../../../envs/malloc/generators.js';
import { compileProgram } from '../../../envs/malloc/program.js';
import { selectBackend } from '../../../models/backend.js';
import { MuZeroNetworks, resolveNetworkConfig } from '../../../models/muzero/networks.js';
import { resolveSearchConfig } from '../../../models/muzero/search.js';
import { selfPlayGames } from '../../../rollout/selfplay.js';
import { episodeToReplayInput } from '../../../trainer/muzero/episodes.js';
import { PrioritizedReplay } from '../../../trainer/muzero/replay.js';
import { MuZeroTrainOptionsSchema, createMuZeroOptimizer, muzeroTrainStep } from '../../../trainer/muzero/train.js';

const program = compileProgram(randomProgram({ seed: 83, instructions: 5, minSize: 64, maxSize: 4096, alignment: 64 }));
const gameOptions = { candidates: 4, occupancyOffsetBins: 4, occupancyTimeBins: 4, lookahead: 2 };
let net: MuZeroNetworks;

beforeAll(async () => {
  await selectBackend('cpu');
  const game = new MallocGame(program, gameOptions);
  net = new MuZeroNetworks(
    resolveNetworkConfig({
      observationSize: game.observationSize,
      numActions: game.numActions,
      stateSize: 16,
      hiddenSize: 48,
      representationLayers: 1,
      dynamicsLayers: 1,
      predictionLayers: 1,
    }),
    7,
  );
  const weights = net.getWeights();
  (weights['prediction.policy.bias'].data as Float32Array)[game.slowAction] = 2;
  net.setWeights(weights);
});

afterAll(() => net.dispose());

describe('MuZero learning check', () => {
  it('improves the return of deterministic search from its initial value to near the game optimum in 32 updates', async () => {
    const evaluation = resolveSearchConfig({ simulations: 8, gumbelScale: 0 });
    const evaluate = async () =>
      (await selfPlayGames(net, [{ id: 'p', program }], { search: evaluation, game: gameOptions }, new Rng(0)))[0].return;
    const initial = await evaluate();
    expect(initial).toBe(0);

    const rng = new Rng(3);
    const search = resolveSearchConfig({ simulations: 8 });
    const options = MuZeroTrainOptionsSchema.parse({ batchSize: 32, learningRate: 5e-3 });
    const optimizer = createMuZeroOptimizer(net, options);
    const replay = new PrioritizedReplay(net.config.observationSize, net.config.numActions, { capacity: 1000 });
    for (let iteration = 0; iteration < 8; iteration++) {
      const episodes = await selfPlayGames(
        net,
        Array.from({ length: 4 }, () => ({ id: 'p', program })),
        { search, game: gameOptions },
        rng,
      );
      for (const episode of episodes) replay.add(episodeToReplayInput(episode, program, gameOptions));
      for (let update = 0; update < 4; update++) {
        const batch = replay.sample(options.batchSize, rng);
        const stats = await muzeroTrainStep(net, optimizer, batch, options);
        replay.updatePriorities(batch.slots, stats.priorities);
      }
    }
    optimizer.dispose();
    const final = await evaluate();
    const optimum = exactGameOptimum(program, gameOptions).saved;
    expect(final).toBeGreaterThan(initial + 0.3);
    expect(final).toBeGreaterThanOrEqual(0.9 * optimum);
  });
});
