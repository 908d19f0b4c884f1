import { describe, expect, it } from 'vitest';
import { escapeHtml } from '../../../core/format.js';
import { chartData, renderReport } from '../../../trainer/report.js';
import { formatDuration, progressLine } from '../../../cli/progress.js';

const records: Array<Record<string, number>> = [
  { step: -1, time: 0, 'sft/step': 1, 'sft/nll': 2.5 },
  { step: 1, time: 1, 'charts/reward_mean': 0.25, 'charts/success_rate': 0.25, 'losses/loss': 0.1 },
  { step: 2, time: 2, 'charts/reward_mean': 0.5, 'charts/success_rate': 0.5, 'losses/loss': Number.NaN },
];

describe('run report', () => {
  it('puts the recorded points of each metric on its chart', () => {
    expect(chartData(records, ['charts/reward_mean'])).toEqual({ x: [1, 2], ys: [[0.25, 0.5]] });
    expect(chartData(records, ['losses/loss'])).toEqual({ x: [1, 2], ys: [[0.1, null]] });
    expect(chartData(records, ['sft/nll'])).toEqual({ x: [1], ys: [[2.5]] });
  });

  it('is a self-contained page: no external script or stylesheet, data inlined, names escaped', () => {
    const html = renderReport(records, { name: '<run>', algorithm: 'loop', env: { name: 'toy/guess', module: undefined, options: {} } });
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+stylesheet/);
    expect(html).toContain('uPlot');
    expect(html).toContain('"x":[1,2]');
    expect(html).toContain('&lt;run&gt;');
    expect(html).toContain('reward 0.250 → 0.500');
  });

  it('escapes HTML', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('progress line', () => {
  it('shows iteration, reward, throughput and the ETA from the mean iteration time', () => {
    const line = progressLine({ iteration: 10, total: 40, reward: 0.5, success: 0.25, episodesPerSec: 12.34, elapsedSec: 100 }, 8);
    expect(line).toBe('iter 10/40 ██░░░░░░ reward 0.500 success 25% 12.3 ep/s ETA 5m00s');
  });

  it('formats durations', () => {
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3723)).toBe('1h02m');
    expect(formatDuration(Number.NaN)).toBe('?');
  });
});

describe('end-of-run summary', () => {
  it('compares the means of the first and last tenth of the run', async () => {
    const { summaryLine } = await import('../../../trainer/report.js');
    const rows = Array.from({ length: 20 }, (_, i) => ({
      step: i + 1,
      'charts/reward_mean': i < 2 ? 0.25 : i >= 18 ? 0.75 : 0.5,
      'charts/success_rate': i < 2 ? 0.5 : 1,
      'time/elapsed_s': 61,
    }));
    expect(summaryLine(rows)).toBe(
      'reward 0.250 → 0.750, success 50% → 100% (mean of the first and last 2 iterations) over 20 iterations in 1m01s',
    );
  });
});
