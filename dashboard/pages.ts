/**
 * The page shells of the dashboard. They hold no data from Redis beyond the (escaped) job id in the URL;
 * the client script (assets/app.js) fetches the JSON API and fills the page with textContent. A page that
 * the server already knows is wrong (unknown job id) carries the message in the shell itself, so it never
 * renders blank.
 */
import { escapeHtml } from '../core/format.js';

/** The pages the dashboard serves. */
export type PageName = 'jobs' | 'job' | 'trajectories';

/** What a shell shows besides the client-filled parts. */
export interface PageParams {
  readonly prefix: string;
  readonly readOnly: boolean;
  readonly jobId?: string;
  /** A message to show instead of the page's content. */
  readonly error?: string;
}

const TITLES: Record<PageName, string> = { jobs: 'Training jobs', job: 'Job', trajectories: 'Trajectories' };

function body(page: PageName, jobId: string | undefined): string {
  const id = escapeHtml(jobId ?? '');
  const jobPath = `/jobs/${escapeHtml(encodeURIComponent(jobId ?? ''))}`;
  switch (page) {
    case 'jobs':
      return `<table id="jobs" class="table"><thead><tr><th>job</th><th>state</th><th>iteration</th><th>policy version</th><th>reward</th><th>algorithm</th><th>env</th><th>updated</th></tr></thead><tbody></tbody></table>`;
    case 'job':
      return `<h1><span id="job-id">${id}</span> <span id="state" class="state"></span></h1>
<nav class="sub"><a href="${jobPath}/trajectories">trajectories</a></nav>
<section class="summary">
  <div><progress id="progress" max="1" value="0"></progress> <span id="progress-text"></span></div>
  <dl id="facts"></dl>
  <p id="job-error" class="message" hidden></p>
</section>
<h2>Throughput</h2><dl id="throughput"></dl>
<h2>Failures by cause</h2>
<table id="failures" class="table"><thead><tr><th>cause</th><th>total</th><th>last iteration</th><th>iterations with any</th></tr></thead><tbody></tbody></table>
<h2>Curves</h2><p id="charts-empty" class="message" hidden></p><div id="charts" class="grid"></div>
<h2>Config</h2><pre id="config"></pre>`;
    case 'trajectories':
      return `<h1><a href="${jobPath}">${id}</a> · trajectories</h1>
<form id="pick" class="pick"><label>iteration <select id="step"></select></label> <label>group <select id="group"></select></label> <span id="task"></span></form>
<p class="legend"><span class="tok policy">policy token</span> <span class="tok env">environment / prompt token</span> <span class="tok special">⏎EOT</span> end of turn · hover a token for its id, log-prob and the rollout's advantage</p>
<div id="rollouts"></div>`;
  }
}

/** One page shell (escaped; no inline script, so the Content-Security-Policy can forbid them). */
export function renderPage(page: PageName, params: PageParams): string {
  const message = params.error
    ? `<p id="message" class="message error">${escapeHtml(params.error)}</p>`
    : `<p id="message" class="message" hidden></p>`;
  const content = params.error ? '' : body(page, params.jobId);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`${TITLES[page]}${params.jobId ? ` — ${params.jobId}` : ''} · horizon`)}</title>
<link rel="stylesheet" href="/assets/uplot.css"><link rel="stylesheet" href="/assets/app.css"></head>
<body data-page="${page}" data-job-id="${escapeHtml(params.jobId ?? '')}">
<header><a href="/" class="brand">horizon</a> <a href="/">jobs</a> <a href="/queues">queues</a> <span class="muted">prefix ${escapeHtml(params.prefix)}${params.readOnly ? ' · read-only' : ''}</span></header>
<main>${message}
${content}
</main>
<script src="/assets/uplot.js"></script><script src="/assets/app.js"></script>
</body></html>
`;
}
