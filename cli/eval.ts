/**
 * `horizon eval <run-dir>`: evaluate one or more checkpoints of a run on held-out tasks and print a table
 * (policy, the environment's summary metrics, its baselines) — plus, for Delethink / LongCoT runs, accuracy
 * against thinking budget, as a table and an SVG plot. For mallocMuZero runs (algorithm `muzero`): one
 * row per program (baseline time, agent time, speed-up over the XLA-like baseline) and the summary.
 */
import { writeFileSync } from 'node:fs';
import { ConfigError, ServiceError } from '../core/errors.js';
import { formatDuration } from '../core/format.js';
import { mixSeed } from '../core/rng.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import { formatSpeedupTable } from '../envs/malloc/evaluate.js';
import { resolveGameOptions } from '../envs/malloc/game.js';
import { selectBackend } from '../models/backend.js';
import { EngineDecoder } from '../models/engine/decoder.js';
import { openEngine } from '../models/engine/index.js';
import { EngineModel } from '../models/engine/model.js';
import type { GenerationPolicy } from '../models/sampler.js';
import { escapeHtml } from '../core/format.js';
import { evaluatePolicy, loadRunConfig, loadRunPolicy, type EvalResult } from '../trainer/evaluate.js';
import { evalSearchConfig, evaluateMuZero, loadRunNetworks, type MuZeroEvalResult } from '../trainer/muzero/evaluate.js';
import { loadEvalPrograms } from '../trainer/muzero/programs.js';

export interface EvalCommandOptions {
  readonly checkpoint: readonly string[];
  /** `path=value` overrides of the run's config (e.g. env.options.length=24 for longer problems). */
  readonly set?: readonly string[];
  readonly split?: string;
  readonly tasks?: number;
  readonly samples?: number;
  readonly batch?: number;
  readonly chunks?: string;
  readonly backend?: string;
  readonly baselines: boolean;
  /** Print the first n episodes of each checkpoint, decoded. */
  readonly show?: number;
  readonly json?: string;
  readonly plot?: string;
  /** MuZero runs only: program files or directories (default: the committed held-out set). */
  readonly programs?: readonly string[];
}

/** One evaluated checkpoint. */
export interface CheckpointEval {
  readonly checkpoint: number;
  readonly result: EvalResult;
}

/** Parse `--chunks`: a comma list and/or ranges, e.g. `1,2,4,8` or `1..8` or `5,10..12`. */
export function parseChunkList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const range = /^(\d+)\.\.(\d+)$/.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (a < 1 || b < a || b - a > 10_000) throw new ConfigError(`--chunks: bad range "${part}" (want a..b with 1 ≤ a ≤ b)`);
      for (let i = a; i <= b; i++) out.add(i);
    } else if (/^\d+$/.test(part) && Number(part) >= 1) out.add(Number(part));
    else throw new ConfigError(`--chunks: "${part}" is not a chunk count ≥ 1 or a range a..b`);
  }
  if (out.size === 0) throw new ConfigError('--chunks: give at least one chunk count, e.g. --chunks 1,2,4,8');
  return [...out].sort((x, y) => x - y);
}

export async function evalCommand(
  runDir: string,
  opts: EvalCommandOptions,
  log: (line: string) => void = (l) => console.error(l),
): Promise<CheckpointEval[]> {
  const config = loadRunConfig(runDir, opts.set);
  if (config.algorithm === 'muzero')
    throw new ConfigError(`${runDir} is a muzero run: evaluate it with muzeroEvalCommand (\`horizon eval\` does)`);
  if (opts.programs?.length)
    throw new ConfigError('--programs applies to muzero runs; this run trains a token policy (use --split and --tasks)');
  const requested = (opts.backend ?? config.backend) as Parameters<typeof selectBackend>[0];
  // On a GPU (backend auto or engine) the episodes are decoded by the engine.
  const engine = requested === 'auto' || requested === 'engine' ? await openEngine(requested) : undefined;
  if (requested === 'engine' && !engine?.runtime)
    throw new ServiceError(`backend 'engine' was requested but is unavailable: ${engine?.reason}`);
  const backend = await selectBackend(engine?.runtime ? 'engine' : requested);
  log(engine?.runtime ? `backend: engine (decoding on ${engine.reason})` : `backend: ${backend.name} (${backend.reason})`);
  const chunks = opts.chunks ? parseChunkList(opts.chunks) : undefined;
  if (chunks && config.rollout.context !== 'delethink' && config.rollout.context !== 'longcot') {
    throw new ConfigError(`--chunks applies to delethink / longcot runs; this run uses rollout.context: ${config.rollout.context}`);
  }
  const evals: CheckpointEval[] = [];
  for (const which of opts.checkpoint.length ? opts.checkpoint : ['last']) {
    const loaded = await loadRunPolicy(runDir, config, which);
    const { iteration } = loaded;
    let policy: GenerationPolicy = loaded.policy;
    const release: (() => void)[] = [() => loaded.policy.dispose()];
    if (engine?.runtime) {
      const model = await EngineModel.create(engine.runtime, loaded.policy.config, config.seed, {
        precision: config.engine.precision,
        training: false,
      });
      release.push(() => model.dispose());
      model.setWeights(await loaded.policy.getWeightsAsync());
      const decoder = await EngineDecoder.create(model, { maxRows: Math.max(1, opts.batch ?? 32) });
      release.push(() => decoder.dispose());
      policy = decoder;
    }
    log(`checkpoint ${iteration}: evaluating`);
    try {
      const result = await evaluatePolicy(policy, config, {
        split: opts.split,
        tasks: opts.tasks,
        samples: opts.samples,
        batchSize: opts.batch,
        chunks,
        // Baselines do not depend on the checkpoint: score them once.
        baselines: opts.baselines && evals.length === 0,
        show: opts.show,
        log,
      });
      evals.push({ checkpoint: iteration, result });
    } finally {
      for (const fn of release.reverse()) fn();
    }
  }
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ runDir, config: config.name, evals }, null, 2)}\n`);
  if (opts.plot && evals.some((e) => e.result.budgets))
    writeFileSync(opts.plot, budgetPlotSvg(evals, `${config.name} (${config.rollout.context})`));
  return evals;
}

/** One evaluated checkpoint of a muzero run. */
export interface MuZeroCheckpointEval {
  readonly checkpoint: number;
  readonly result: MuZeroEvalResult;
}

/**
 * `horizon eval` of a muzero run: each chosen checkpoint plays every program once with the run's search
 * (`muzero.search`, without noise unless `muzero.eval.deterministic` is false; `--set` changes either),
 * and is compared with the XLA-like baseline. Programs: `opts.programs` (files or directories, relative
 * to the working directory) or the committed held-out set; `opts.tasks` keeps the first n.
 */
export async function muzeroEvalCommand(
  runDir: string,
  config: ResolvedConfig,
  opts: EvalCommandOptions,
  log: (line: string) => void = (l) => console.error(l),
): Promise<MuZeroCheckpointEval[]> {
  const inapplicable = [
    ['--split', opts.split],
    ['--chunks', opts.chunks],
    ['--plot', opts.plot],
    ['--show', opts.show ? String(opts.show) : undefined],
  ].filter(([, v]) => v !== undefined);
  if (inapplicable.length)
    throw new ConfigError(
      `${inapplicable.map(([f]) => f).join(', ')}: not for muzero runs, which are evaluated on programs (--programs, --tasks)`,
    );
  const backend = await selectBackend((opts.backend ?? config.backend) as Parameters<typeof selectBackend>[0]);
  log(`backend: ${backend.name} (${backend.reason})`);
  const programs = loadEvalPrograms({
    heldout: !opts.programs?.length,
    files: opts.programs ?? [],
    baseDir: process.cwd(),
    csvCapacityFraction: config.muzero.programs.csvCapacityFraction,
    maxPrograms: opts.tasks,
  });
  const game = resolveGameOptions(config.muzero.game);
  const evals: MuZeroCheckpointEval[] = [];
  for (const which of opts.checkpoint.length ? opts.checkpoint : ['last']) {
    const { networks, iteration } = await loadRunNetworks(runDir, config, which);
    log(`checkpoint ${iteration}: playing ${programs.length} programs`);
    try {
      const result = await evaluateMuZero(networks, programs, {
        search: evalSearchConfig(config),
        game,
        seed: mixSeed(config.seed, 0xe7a1),
      });
      evals.push({ checkpoint: iteration, result });
    } finally {
      networks.dispose();
    }
  }
  if (opts.json) {
    const body = { runDir, config: config.name, programs: programs.map((p) => p.id), evals };
    writeFileSync(opts.json, `${JSON.stringify(body, null, 2)}\n`);
  }
  return evals;
}

/** The per-program table and summary line of every evaluated checkpoint. */
export function formatMuZeroEval(evals: readonly MuZeroCheckpointEval[]): string {
  return evals
    .map(({ checkpoint, result }) => {
      const s = result.search;
      const noise = s.gumbelScale === 0 && s.rootExplorationFraction === 0 && s.temperature === 0 ? ', no search noise' : '';
      const head =
        `checkpoint ${checkpoint}: ${result.rows.length} programs, ${s.algorithm} search, ${s.simulations} simulations, ${s.dynamics} dynamics${noise}; ` +
        `${result.valid}/${result.rows.length} mappings pass the checker; ${formatDuration(result.wallSec)}`;
      return `${head}\n${formatSpeedupTable(result.rows, result.summary)}`;
    })
    .join('\n\n');
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** The tables `horizon eval` prints. */
export function formatEval(evals: readonly CheckpointEval[]): string {
  if (evals.length === 0) return '';
  const first = evals[0].result;
  const summaryKeys = [
    ...new Set([
      ...evals.flatMap((e) => Object.keys(e.result.policy.summary)),
      ...Object.values(first.baselines).flatMap((b) => Object.keys(b.summary)),
    ]),
  ];
  const header = ['method', 'episodes', 'reward', 'success', 'tokens', ...summaryKeys];
  const rows: string[][] = evals.map((e) => [
    `checkpoint ${e.checkpoint}`,
    String(e.result.policy.episodes),
    e.result.policy.rewardMean.toFixed(3),
    pct(e.result.policy.successRate),
    e.result.policy.meanTokens.toFixed(0),
    ...summaryKeys.map((k) => fmt(e.result.policy.summary[k])),
  ]);
  for (const [name, scores] of Object.entries(first.baselines)) {
    rows.push([
      name,
      String(scores.episodes),
      scores.rewardMean.toFixed(3),
      pct(scores.successRate),
      '',
      ...summaryKeys.map((k) => fmt(scores.summary[k])),
    ]);
  }
  const lines = [
    `split ${first.split}, ${first.tasks} tasks, ${formatDuration(evals.reduce((a, e) => a + e.result.wallSec, 0))}`,
    table(header, rows),
  ];
  if (evals.some((e) => e.result.budgets)) {
    const budgets = evals[0].result.budgets ?? [];
    const bHeader = ['chunks', 'budget', ...evals.map((e) => `ckpt ${e.checkpoint} accuracy`)];
    const bRows = budgets.map((b, i) => [
      String(b.chunks),
      String(b.budget),
      ...evals.map((e) => pct(e.result.budgets?.[i]?.accuracy ?? 0)),
    ]);
    lines.push('', 'accuracy against thinking budget (each trace right-trimmed to the budget):', table(bHeader, bRows));
    const cap = evals[0].result.contextCap;
    if (cap !== undefined)
      lines.push(
        `(longcot: one context holds at most ${cap} thinking tokens with this model.maxSeqLen; larger budgets are the same traces)`,
      );
  }
  for (const e of evals) {
    for (const [i, ep] of e.result.shown.entries()) {
      lines.push(
        '',
        `── checkpoint ${e.checkpoint}, episode ${i + 1}: task ${ep.task.split}#${ep.task.index}, reward ${ep.reward.total.toFixed(3)}`,
      );
      ep.segments.forEach((seg, k) =>
        lines.push(`[${k}] context: ${JSON.stringify(seg.context)}`, `[${k}] output:  ${JSON.stringify(seg.output)}`),
      );
    }
  }
  return lines.join('\n');
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
}

function table(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A self-contained SVG: accuracy (y) against thinking budget (x, log scale) per checkpoint. */
export function budgetPlotSvg(evals: readonly CheckpointEval[], title: string): string {
  const W = 640;
  const H = 400;
  const pad = { l: 60, r: 20, t: 40, b: 50 };
  const points = evals.flatMap((e) => e.result.budgets ?? []);
  const xs = points.map((p) => Math.log2(p.budget));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  const sx = (b: number) => pad.l + ((Math.log2(b) - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (a: number) => H - pad.b - a * (H - pad.t - pad.b);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escapeHtml(title)}: accuracy vs thinking budget</text>`,
    `<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="black"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="black"/>`,
  ];
  for (const a of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<text x="${pad.l - 8}" y="${sy(a) + 4}" text-anchor="end">${(a * 100).toFixed(0)}%</text>`);
    parts.push(`<line x1="${pad.l}" y1="${sy(a)}" x2="${W - pad.r}" y2="${sy(a)}" stroke="#eee"/>`);
  }
  for (const b of [...new Set(points.map((p) => p.budget))]) {
    parts.push(`<text x="${sx(b)}" y="${H - pad.b + 16}" text-anchor="middle">${b}</text>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">thinking budget (tokens, log scale)</text>`);
  evals.forEach((e, i) => {
    const pts = (e.result.budgets ?? []).map((p) => `${sx(p.budget).toFixed(1)},${sy(p.accuracy).toFixed(1)}`);
    const color = colors[i % colors.length];
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`);
    parts.push(
      `<text x="${W - pad.r - 4}" y="${pad.t + 16 * (i + 1)}" text-anchor="end" fill="${color}">checkpoint ${e.checkpoint}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
