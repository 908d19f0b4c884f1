/**
 * Evaluation of mallocMuZero networks (spec: "Report the terminal comparison against the baseline:
 * speed-up = T_base / T_agent − 1"): every program is played once with search, in lock-step; the
 * agent's mapping is rebuilt by replaying its actions, checked by the same checker as the baselines'
 * and costed by the same model, and compared with the XLA-like baseline (envs/malloc/evaluate.ts).
 * Used by `train.evalEvery` (in the learner) and by `horizon eval` on a run's checkpoints.
 */
import path from 'node:path';
import { ConfigError, TrainingError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import type { ResolvedConfig } from '../../configs/resolve.js';
import { checkMapping } from '../../envs/malloc/checker.js';
import { speedupRow, summariseSpeedups, type SpeedupRow, type SpeedupSummary } from '../../envs/malloc/evaluate.js';
import { observationLayout, replayActions, resolveGameOptions, type MallocGameOptions } from '../../envs/malloc/game.js';
import type { SearchConfig } from '../../configs/muzero.js';
import { MuZeroNetworks, resolveNetworkConfig, type SearchModel } from '../../models/muzero/networks.js';
import { selfPlayGames, type SelfPlayProgram } from '../../rollout/selfplay.js';
import { listCheckpoints, loadCheckpoint } from '../checkpoint.js';

/** One evaluation of one set of weights. */
export interface MuZeroEvalResult {
  /** Per program, in the order given: baseline and agent time, speed-up. */
  readonly rows: readonly SpeedupRow[];
  readonly summary: SpeedupSummary;
  /** Mean return (share of the all-slow time saved) of the agent's games. */
  readonly returnMean: number;
  /** [programs] the agent's offsets per buffer (−1 = slow memory), in the order of `rows`. */
  readonly mappings: ReadonlyArray<readonly number[]>;
  /** Mappings that passed checkMapping (all of them, or this throws). */
  readonly valid: number;
  readonly search: SearchConfig;
  readonly wallSec: number;
}

/**
 * The search evaluation uses: `muzero.search`, without noise when `muzero.eval.deterministic` (Gumbel
 * scale 0, no Dirichlet noise, the most-visited action).
 */
export function evalSearchConfig(config: ResolvedConfig): SearchConfig {
  const search = config.muzero.search;
  return config.muzero.eval.deterministic ? { ...search, gumbelScale: 0, rootExplorationFraction: 0, temperature: 0 } : { ...search };
}

/** Play each program once with `search` on `model` and compare with the XLA-like baseline. */
export async function evaluateMuZero(
  model: SearchModel,
  programs: readonly SelfPlayProgram[],
  options: { readonly search: SearchConfig; readonly game: MallocGameOptions; readonly seed: number },
): Promise<MuZeroEvalResult> {
  const started = Date.now();
  const episodes = await selfPlayGames(model, programs, { search: options.search, game: options.game }, new Rng(options.seed));
  const rows: SpeedupRow[] = [];
  const mappings: number[][] = [];
  episodes.forEach((episode, i) => {
    const { program } = programs[i];
    const mapping = replayActions(program, options.game, episode.actions).game.mapping();
    const check = checkMapping(program, mapping);
    if (!check.ok)
      throw new TrainingError(`the agent's mapping of ${programs[i].id} fails the checker: ${check.violations.slice(0, 3).join('; ')}`);
    rows.push(speedupRow(program, mapping));
    mappings.push(Array.from(mapping));
  });
  return {
    rows,
    summary: summariseSpeedups(rows),
    returnMean: episodes.reduce((a, e) => a + e.return, 0) / Math.max(1, episodes.length),
    mappings,
    valid: mappings.length,
    search: options.search,
    wallSec: (Date.now() - started) / 1000,
  };
}

/** Fresh networks of a muzero run's architecture (observation and action sizes from its game options). */
export function createRunNetworks(config: ResolvedConfig, options: { scope?: string } = {}): MuZeroNetworks {
  const game = resolveGameOptions(config.muzero.game);
  const networkConfig = resolveNetworkConfig({
    ...config.muzero.network,
    observationSize: observationLayout(game).size,
    numActions: game.candidates + 1,
  });
  return new MuZeroNetworks(networkConfig, config.seed, options);
}

/**
 * The networks of checkpoint `which` of a muzero run: an iteration number, `last`, or a checkpoint
 * directory. The checkpoint is verified (sha256 manifest) before its weights are used.
 */
export async function loadRunNetworks(
  runDir: string,
  config: ResolvedConfig,
  which: string,
): Promise<{ networks: MuZeroNetworks; iteration: number }> {
  const dir = path.join(runDir, 'checkpoints');
  const entries = await listCheckpoints(dir);
  if (entries.length === 0) throw new ConfigError(`${runDir} has no checkpoints in ${dir}`);
  const entry = which === 'last' ? entries.at(-1) : entries.find((e) => String(e.iteration) === which || e.path === path.resolve(which));
  if (entry === undefined)
    throw new ConfigError(`no checkpoint "${which}" in ${dir}; available: ${entries.map((e) => e.iteration).join(', ')} (or "last")`);
  const loaded = await loadCheckpoint(entry.path);
  const networks = createRunNetworks(config, { scope: `eval${loaded.iteration}` });
  try {
    networks.setWeights(loaded.model);
  } catch (err) {
    networks.dispose();
    throw err;
  }
  return { networks, iteration: loaded.iteration };
}
