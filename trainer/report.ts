/**
 * The run report: one self-contained HTML page (uPlot and the data inlined, no network) with the reward,
 * success, loss and throughput curves of a run. Rewritten at every checkpoint and at the end.
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../configs/resolve.js';
import { escapeHtml, formatDuration } from '../core/format.js';

const require = createRequire(import.meta.url);

/** Charts of the report: title and the metric keys drawn on it. */
export const REPORT_CHARTS: ReadonlyArray<{ title: string; keys: readonly string[] }> = [
  { title: 'Reward', keys: ['charts/reward_mean', 'charts/success_rate'] },
  { title: 'Loss', keys: ['losses/loss', 'losses/policy_loss'] },
  { title: 'KL and clipping', keys: ['losses/approx_kl', 'losses/clipfrac', 'losses/logprob_mismatch'] },
  { title: 'Gradient norm', keys: ['losses/grad_norm'] },
  { title: 'Episode length', keys: ['charts/episode_turns'] },
  { title: 'Throughput (episodes/s)', keys: ['rollout/episodes_per_s'] },
  { title: 'Evaluation (held-out tasks)', keys: ['eval/reward_mean', 'eval/success_rate'] },
  { title: 'SFT warm start (NLL per step)', keys: ['sft/nll'] },
];

/**
 * The before/after line printed at the end of a run: means over the first and the last few iterations
 * (a tenth of the run, 1 to 10), so one noisy iteration does not decide it.
 */
export function summaryLine(records: ReadonlyArray<Record<string, number>>): string {
  const n = Math.max(1, Math.min(10, Math.floor(records.length / 10)));
  const mean = (rows: ReadonlyArray<Record<string, number>>, key: string) => rows.reduce((a, r) => a + r[key], 0) / rows.length;
  const head = records.slice(0, n);
  const tail = records.slice(-n);
  const last = records[records.length - 1];
  const pct = (v: number) => `${(100 * v).toFixed(0)}%`;
  return (
    `reward ${mean(head, 'charts/reward_mean').toFixed(3)} → ${mean(tail, 'charts/reward_mean').toFixed(3)}, ` +
    `success ${pct(mean(head, 'charts/success_rate'))} → ${pct(mean(tail, 'charts/success_rate'))} ` +
    `(mean of the first and last ${n} iteration${n > 1 ? 's' : ''}) over ${last.step} iterations in ${formatDuration(last['time/elapsed_s'])}`
  );
}

let cachedAssets: { js: string; css: string } | undefined;

function uplotAssets(): { js: string; css: string } {
  if (!cachedAssets) {
    // From node_modules, or from next to the single-file build (scripts/gpu-pack.sh copies them there).
    let dist: string;
    try {
      dist = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
    } catch {
      dist = path.dirname(fileURLToPath(import.meta.url));
    }
    cachedAssets = {
      js: readFileSync(path.join(dist, 'uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(path.join(dist, 'uPlot.min.css'), 'utf8'),
    };
  }
  return cachedAssets;
}

/** Series of a chart as uPlot data: x = step (SFT charts: SFT step), one y array per key. */
export function chartData(
  records: ReadonlyArray<Record<string, number>>,
  keys: readonly string[],
): { x: number[]; ys: (number | null)[][] } {
  const sft = keys.some((k) => k.startsWith('sft/'));
  const rows = records.filter((r) => (sft ? r['sft/step'] !== undefined : r.step >= 1) && keys.some((k) => r[k] !== undefined));
  return {
    x: rows.map((r) => (sft ? r['sft/step'] : r.step)),
    ys: keys.map((k) => rows.map((r) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? r[k] : null))),
  };
}

/** Render the report HTML (pure; `writeReport` writes it). */
export function renderReport(
  records: ReadonlyArray<Record<string, number>>,
  config: Pick<ResolvedConfig, 'name' | 'algorithm' | 'env'> & Partial<ResolvedConfig>,
  now = new Date(),
): string {
  const { js, css } = uplotAssets();
  const charts = REPORT_CHARTS.map((c) => ({ ...c, data: chartData(records, c.keys) })).filter((c) => c.data.x.length > 0);
  const iterations = records.filter((r) => r.step >= 1 && r['charts/reward_mean'] !== undefined);
  const summary = iterations.length ? summaryLine(iterations) : 'no iterations recorded yet';
  const payload = JSON.stringify(charts.map((c) => ({ title: c.title, keys: c.keys, x: c.data.x, ys: c.data.ys }))).replace(
    /</g,
    '\\u003c',
  );
  const env = config.algorithm === 'muzero' ? 'malloc' : (config.env?.name ?? config.env?.module ?? '');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`horizon report — ${config.name}`)}</title>
<style>${css}
body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px;margin:0 0 4px}.meta{color:#555;margin-bottom:16px}
.grid{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #ddd;border-radius:6px;padding:8px}</style></head>
<body><h1>${escapeHtml(config.name)} · ${escapeHtml(config.algorithm)} · ${escapeHtml(env)}</h1>
<div class="meta">${escapeHtml(summary)} · generated ${escapeHtml(now.toISOString())}</div>
<div class="grid" id="charts"></div>
<script>${js}</script>
<script>
const charts = ${payload};
const colors = ['#1f77b4','#d62728','#2ca02c','#9467bd'];
for (const c of charts) {
  const card = document.createElement('div'); card.className = 'card'; card.dataset.chart = c.title;
  document.getElementById('charts').appendChild(card);
  new uPlot({ title: c.title, width: 520, height: 260,
    series: [{ label: 'step' }, ...c.keys.map((k, i) => ({ label: k, stroke: colors[i % colors.length], width: 1.5, spanGaps: true }))],
    scales: { x: { time: false } },
    axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => String(Number(v.toPrecision(3)))) }] }, [c.x, ...c.ys], card);
}
</script></body></html>
`;
}

/** Write report.html in the run directory (atomically). */
export function writeReport(
  runDir: string,
  records: ReadonlyArray<Record<string, number>>,
  config: Parameters<typeof renderReport>[1],
): string {
  const file = path.join(runDir, 'report.html');
  writeFileSync(`${file}.tmp`, renderReport(records, config));
  renameSync(`${file}.tmp`, file);
  return file;
}
