/**
 * mallocGame and mallocMuZero throughput on CPU: game steps/s (legal mask + step, one core) on
 * 200-buffer programs, MCTS simulations/s with batched network inference, in-process self-play
 * games/s, and learner updates/s — on the backends given by `--backends` (wasm and cpu by default).
 *
 *   npx tsx bench/malloc.ts                      # everything, wasm and cpu
 *   npx tsx bench/malloc.ts --backends wasm --quick
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng.js';
import { MallocGame } from '../envs/malloc/game.js';
import { convNetProgram, randomProgram, transformerProgram } from '../envs/malloc/generators.js';
import { compileProgram } from '../envs/malloc/program.js';
import type { CompiledProgram } from '../envs/malloc/types.js';
import { selectBackend, type BackendRequest } from '../models/backend.js';
import { MuZeroNetworks, resolveNetworkConfig } from '../models/muzero/networks.js';
import { resolveSearchConfig, runSearch, type SearchRoot } from '../models/muzero/search.js';
import { selfPlayGames } from '../rollout/selfplay.js';
import { episodeToReplayInput } from '../trainer/muzero/episodes.js';
import { PrioritizedReplay } from '../trainer/muzero/replay.js';
import { MuZeroTrainOptionsSchema, createMuZeroOptimizer, muzeroTrainStep } from '../trainer/muzero/train.js';
import { intFlag, machineInfo, machineLine, markdownTable, parseFlags, percentile, progress, writeJsonIfAsked } from './lib.js';

const USAGE = `usage: npx tsx bench/malloc.ts [--backends wasm,cpu] [--games 16] [--simulations 32] [--batch 256] [--quick] [--json out.json]`;
const flags = parseFlags(USAGE, { backends: 'wasm,cpu', games: '16', simulations: '32', batch: '256', quick: false, json: '' });
const games = intFlag(flags.games, 'games');
const simulations = intFlag(flags.simulations, 'simulations');
const batchSize = intFlag(flags.batch, 'batch');
const quick = flags.quick as boolean;
const backends = String(flags.backends).split(',') as BackendRequest[];

/** The three 200-buffer programs the game benchmark plays (transformer 199, conv net 204, random 200 buffers). */
const programs: Array<[string, CompiledProgram]> = [
  ['transformer (9 layers)', compileProgram(transformerProgram({ seed: 1, layers: 9 }))],
  ['conv net (4 × 8 blocks)', compileProgram(convNetProgram({ seed: 1, stages: 4, blocksPerStage: 8 }))],
  ['random (200 instr.)', compileProgram(randomProgram({ seed: 1, instructions: 200 }))],
];

const results: Record<string, unknown> = {};
const info = machineInfo(backends.join('+'));
console.log('# mallocGame / mallocMuZero throughput\n');
console.log(machineLine(info));

// ─── 1. Game steps/s ──────────────────────────────────────────────────────────────────────────────
console.log('\n## Game steps/s (legal mask + step, one core)\n');
const gameRows: Array<Array<string | number>> = [];
for (const [name, program] of programs) {
  for (const policy of ['lowest offset', 'uniform legal'] as const) {
    for (const actionSpace of ['canonical', 'grid'] as const) {
      const stepsPerSecond = measureGameSteps(program, policy, actionSpace, false, quick ? 0.5 : 2);
      const withObservation = measureGameSteps(program, policy, actionSpace, true, quick ? 0.5 : 1);
      gameRows.push([name, program.bufferCount, actionSpace, policy, Math.round(stepsPerSecond), Math.round(withObservation)]);
    }
  }
}
console.log(markdownTable(['program', 'buffers', 'actions', 'policy', 'steps/s', 'steps/s with observe()'], gameRows));
results.game = gameRows;

// ─── 2–4. Search, self-play, learner, per backend ────────────────────────────────────────────────
const searchRows: Array<Array<string | number>> = [];
const selfPlayRows: Array<Array<string | number>> = [];
const learnerRows: Array<Array<string | number>> = [];
for (const request of backends) {
  const backend = await selectBackend(request);
  progress(`backend ${backend.name}: ${backend.reason}`);
  const probe = new MallocGame(programs[0][1]);
  const networks = new MuZeroNetworks(resolveNetworkConfig({ observationSize: probe.observationSize, numActions: probe.numActions }), 1);
  for (const algorithm of ['gumbel', 'puct'] as const) {
    for (const dynamics of ['learned', 'simulator'] as const) {
      const sims = await measureSearch(networks, programs[0][1], algorithm, dynamics);
      searchRows.push([backend.name, algorithm, dynamics, games, simulations, Math.round(sims)]);
    }
  }
  const selfPlay = await measureSelfPlay(networks);
  selfPlayRows.push([
    backend.name,
    selfPlay.games,
    selfPlay.buffers,
    16,
    selfPlay.seconds.toFixed(1),
    selfPlay.gamesPerSecond.toFixed(2),
    Math.round(selfPlay.movesPerSecond),
  ]);
  const learner = await measureLearner(networks, backend.name === 'cpu' && !quick ? 3 : quick ? 2 : 5);
  learnerRows.push([backend.name, batchSize, 5, networks.paramCount, learner.msPerUpdate.toFixed(0), learner.updatesPerSecond.toFixed(2)]);
  networks.dispose();
}
console.log(
  `\n## MCTS simulations/s (batched inference: one network call per simulation step for ${games} games; 199-buffer transformer positions; median of runs)\n`,
);
console.log(markdownTable(['backend', 'search', 'dynamics', 'games', 'simulations', 'simulations/s'], searchRows));
console.log('\n## Self-play (in process, Gumbel, learned dynamics)\n');
console.log(markdownTable(['backend', 'games', 'buffers each', 'simulations', 'seconds', 'games/s', 'moves/s'], selfPlayRows));
console.log('\n## Learner updates/s (sample + K-step unroll loss + backward + Adam; median update)\n');
console.log(markdownTable(['backend', 'batch', 'K', 'parameters', 'ms/update', 'updates/s'], learnerRows));
results.search = searchRows;
results.selfPlay = selfPlayRows;
results.learner = learnerRows;
writeJsonIfAsked(flags.json as string, { machine: info, results });

/** Play whole episodes for about `seconds`; steps/s of legalMask() + step() (plus observe() if asked). */
function measureGameSteps(
  program: CompiledProgram,
  policy: 'lowest offset' | 'uniform legal',
  actionSpace: 'canonical' | 'grid',
  observe: boolean,
  seconds: number,
): number {
  const rng = new Rng(1);
  const choices = Uint32Array.from({ length: 4096 }, () => rng.nextU32());
  let c = 0;
  const template = new MallocGame(program, { actionSpace });
  const observation = new Float32Array(template.observationSize);
  let steps = 0;
  let elapsed = 0;
  const start = performance.now();
  while (elapsed < seconds * 1000) {
    const game = template.clone();
    while (!game.done) {
      const mask = game.legalMask();
      if (observe) game.observe(observation);
      let action = game.slowAction;
      if (policy === 'lowest offset') {
        for (let a = 0; a < mask.length; a++) {
          if (mask[a]) {
            action = a;
            break;
          }
        }
      } else {
        let legal = 0;
        for (let a = 0; a < mask.length; a++) legal += mask[a];
        let pick = choices[c++ & 4095] % legal;
        for (let a = 0; a < mask.length; a++) if (mask[a] && pick-- === 0) action = a;
      }
      game.step(action);
      steps += 1;
    }
    elapsed = performance.now() - start;
  }
  return (steps / elapsed) * 1000;
}

/** Simulations/s of one batched search over `games` positions midway through the program. */
async function measureSearch(
  networks: MuZeroNetworks,
  program: CompiledProgram,
  algorithm: 'gumbel' | 'puct',
  dynamics: 'learned' | 'simulator',
): Promise<number> {
  const config = resolveSearchConfig({ algorithm, dynamics, simulations });
  const roots: SearchRoot[] = [];
  for (let g = 0; g < games; g++) {
    const game = new MallocGame(program);
    const rng = new Rng(g);
    for (let k = 0; k < program.bufferCount / 2; k++) {
      const mask = game.legalMask();
      const legal = [...mask.keys()].filter((a) => mask[a]);
      game.step(legal[rng.int(legal.length)]);
    }
    const observation = new Float32Array(game.observationSize);
    game.observe(observation);
    roots.push({ observation, legalMask: game.legalMask().slice(), game });
  }
  const rng = new Rng(1);
  // Warm-up: kernel set-up for these batch sizes and JIT compilation of the search code.
  for (let w = 0; w < 3; w++) await runSearch(networks, roots, config, rng);
  const rates: number[] = [];
  for (let r = 0; r < (quick ? 3 : 7); r++) {
    const start = performance.now();
    await runSearch(networks, roots, config, rng);
    rates.push((games * simulations * 1000) / (performance.now() - start));
  }
  return percentile(rates, 50);
}

/** Games/s of in-process self-play: 8 (quick: 4) random programs of 50 buffers, 16 simulations per move. */
async function measureSelfPlay(networks: MuZeroNetworks) {
  const count = quick ? 4 : 8;
  const list = Array.from({ length: count }, (_, i) => ({
    id: `r${i}`,
    program: compileProgram(randomProgram({ seed: 100 + i, instructions: 50 })),
  }));
  const start = performance.now();
  const episodes = await selfPlayGames(networks, list, { search: resolveSearchConfig({ simulations: 16 }) }, new Rng(1));
  const seconds = (performance.now() - start) / 1000;
  const moves = episodes.reduce((sum, e) => sum + e.actions.length, 0);
  return { games: count, buffers: 50, seconds, gamesPerSecond: count / seconds, movesPerSecond: moves / seconds };
}

/** ms per learner update at `batchSize`, K = 5, on replay filled from self-play. */
async function measureLearner(networks: MuZeroNetworks, updates: number) {
  const list = Array.from({ length: 4 }, (_, i) => ({
    id: `r${i}`,
    program: compileProgram(randomProgram({ seed: 200 + i, instructions: 60 })),
  }));
  const episodes = await selfPlayGames(networks, list, { search: resolveSearchConfig({ simulations: 2 }) }, new Rng(2));
  const replay = new PrioritizedReplay(networks.config.observationSize, networks.config.numActions, { capacity: 10_000 });
  episodes.forEach((episode, i) => replay.add(episodeToReplayInput(episode, list[i].program, {})));
  const options = MuZeroTrainOptionsSchema.parse({ batchSize });
  const optimizer = createMuZeroOptimizer(networks, options);
  const rng = new Rng(3);
  const step = async () => {
    const batch = replay.sample(batchSize, rng);
    const stats = await muzeroTrainStep(networks, optimizer, batch, options);
    replay.updatePriorities(batch.slots, stats.priorities);
  };
  await step(); // warm-up
  const times: number[] = [];
  for (let u = 0; u < updates; u++) {
    const start = performance.now();
    await step();
    times.push(performance.now() - start);
  }
  const ms = percentile(times, 50);
  optimizer.dispose();
  progress(`learner: ${ms.toFixed(0)} ms/update, ${tf.memory().numTensors} live tensors`);
  return { msPerUpdate: ms, updatesPerSecond: 1000 / ms };
}
