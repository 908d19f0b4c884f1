// The dashboard's client: fetches the JSON API and fills the page shell. Every value from the server is
// put on the page with textContent or an attribute, never parsed as HTML. The data each chart drew is kept
// on window.__dashboard (and the point count on the chart's data-points attribute) for inspection.
(() => {
  'use strict';
  const page = document.body.dataset.page;
  const jobId = document.body.dataset.jobId;
  const encodedJob = encodeURIComponent(jobId || '');
  const ACTIVE = new Set(['queued', 'running', 'cancelling']);
  const shared = { page, charts: {}, loaded: false };
  window.__dashboard = shared;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }
  function byId(id) {
    return document.getElementById(id);
  }
  function showMessage(text, isError = true) {
    const m = byId('message');
    m.textContent = text;
    m.hidden = false;
    m.classList.toggle('error', isError);
  }
  function clearMessage() {
    const m = byId('message');
    m.hidden = true;
    m.textContent = '';
  }
  function markLoaded() {
    shared.loaded = true;
    document.body.dataset.loaded = '1';
  }
  async function getJson(url) {
    const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    let body;
    try {
      body = await res.json();
    } catch {
      throw new Error(`${url} answered HTTP ${res.status} without JSON`);
    }
    if (!res.ok) throw new Error(body && typeof body.error === 'string' ? body.error : `${url} answered HTTP ${res.status}`);
    return body;
  }
  function fmt(v, digits = 3) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 100) return v.toFixed(1);
    return v.toFixed(digits);
  }
  // uPlot's default labels round small values (a KL of 1e-4) to 0; scientific notation keeps them apart.
  function axisLabel(v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    return a < 0.01 || a >= 1e5 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
  }
  function fmtTime(ms) {
    return typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '–';
  }
  function fmtDuration(s) {
    if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = Math.floor(s % 60);
    return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
  }
  function fillDl(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  }

  // ---------------------------------------------------------------- jobs
  async function jobsPage() {
    const tbody = document.querySelector('#jobs tbody');
    const refresh = async () => {
      try {
        const data = await getJson('/api/jobs');
        clearMessage();
        tbody.replaceChildren(
          ...data.jobs.map((j) =>
            el(
              'tr',
              { 'data-job': j.jobId },
              el('td', {}, el('a', { href: `/jobs/${encodeURIComponent(j.jobId)}`, text: j.jobId })),
              el('td', {}, el('span', { class: `state ${j.state}`, text: j.state })),
              el('td', { text: `${j.iteration}/${j.iterations}` }),
              el('td', { text: j.policyVersion }),
              el('td', { text: fmt(j.rewardMean) }),
              el('td', { text: j.algorithm }),
              el('td', { text: j.env }),
              el('td', { text: fmtTime(j.updatedAt ?? j.submittedAt) }),
            ),
          ),
        );
        if (!data.jobs.length) showMessage(`no training jobs under the key prefix "${data.prefix}" (start one with horizon train or horizon submit)`, false);
      } catch (err) {
        showMessage(`could not load the job list: ${err.message}`);
      }
      markLoaded();
    };
    await refresh();
    setInterval(refresh, 5000);
  }

  // ---------------------------------------------------------------- one job
  const CHARTS = [
    { title: 'Reward', keys: ['charts/reward_mean', 'charts/success_rate'] },
    { title: 'Loss', keys: ['losses/loss', 'losses/policy_loss'] },
    { title: 'Clipping and KL', keys: ['losses/clipfrac', 'losses/approx_kl'] },
    { title: 'Gradient norm', keys: ['losses/grad_norm'] },
    { title: 'Staleness (versions)', keys: ['rollout/staleness'] },
    { title: 'Log-prob mismatch (nats)', keys: ['losses/logprob_mismatch'] },
    { title: 'Throughput (episodes/s)', keys: ['rollout/episodes_per_s'] },
    { title: 'Failures', keys: ['rollout/failed_groups', 'rollout/retries', 'rollout/cancelled'] },
    { title: 'SFT warm start (NLL)', keys: ['sft/nll'], x: 'sft/step' },
  ];
  const FAILURES = [
    ['rollout/failed_groups', 'failed groups (episodes failed after all retries; left out)'],
    ['rollout/retries', 'episode retries (env exceptions)'],
    ['rollout/cancelled', 'cancelled stragglers (early stop)'],
    ['rollout/duplicates', 'duplicate deliveries (ignored)'],
    ['rollout/filtered', 'filtered by |A| (not trained on)'],
  ];
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

  async function jobPage() {
    // Columns of the RL iterations (step ≥ 1) and of the SFT warm start, appended as records arrive.
    let rl = {};
    let sft = {};
    let next = 0;
    let attempt;
    let configShown = false;
    const uplots = {};
    const reset = () => {
      rl = {};
      sft = {};
      next = 0;
      for (const key of Object.keys(uplots)) {
        uplots[key].destroy();
        delete uplots[key];
      }
      byId('charts').replaceChildren();
    };
    const column = (store, key) => (store[key] ??= []);
    const ingest = (m) => {
      const at = (k) => m.keys.indexOf(k);
      const stepCol = at('step');
      const sftCol = at('sft/step');
      for (let i = 0; i < (m.columns[0] || []).length; i++) {
        const step = stepCol >= 0 ? m.columns[stepCol][i] : null;
        const sftStep = sftCol >= 0 ? m.columns[sftCol][i] : null;
        if (typeof sftStep === 'number') {
          column(sft, 'sft/step').push(sftStep);
          column(sft, 'sft/nll').push(m.columns[at('sft/nll')]?.[i] ?? null);
          continue;
        }
        if (typeof step !== 'number' || step < 1) continue;
        // A resumed job records the iterations it redoes again: drop the old ones from that step on.
        const steps = column(rl, 'step');
        if (steps.length && step <= steps[steps.length - 1]) {
          const keep = steps.findIndex((s) => s >= step);
          for (const key of Object.keys(rl)) rl[key].length = keep;
        }
        const n = steps.length;
        for (let k = 0; k < m.keys.length; k++) {
          const col = column(rl, m.keys[k]);
          while (col.length < n) col.push(null);
          col.push(m.columns[k][i]);
        }
        for (const key of Object.keys(rl)) while (rl[key].length < n + 1) rl[key].push(null);
      }
    };
    const last = (key) => {
      const col = rl[key] || [];
      for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return col[i];
      return undefined;
    };
    const drawCharts = () => {
      let drawn = 0;
      for (const chart of CHARTS) {
        const store = chart.x === 'sft/step' ? sft : rl;
        const x = store[chart.x || 'step'] || [];
        const keys = chart.keys.filter((k) => (store[k] || []).some((v) => v !== null));
        if (!x.length || !keys.length) continue;
        drawn++;
        const ys = keys.map((k) => store[k].slice(0, x.length));
        const data = [x.slice(), ...ys];
        shared.charts[chart.title] = { keys, x: data[0], ys };
        let card = document.querySelector(`[data-chart="${chart.title}"]`);
        if (!card) {
          card = el('div', { class: 'card', 'data-chart': chart.title });
          byId('charts').append(card);
        }
        card.dataset.points = String(x.length);
        const existing = uplots[chart.title];
        if (existing && existing.series.length === keys.length + 1) existing.setData(data);
        else {
          existing?.destroy();
          card.replaceChildren();
          uplots[chart.title] = new uPlot(
            {
              title: chart.title,
              width: 470,
              height: 240,
              scales: { x: { time: false } },
              axes: [{}, { size: 64, values: (_u, ticks) => ticks.map(axisLabel) }],
              series: [{ label: chart.x === 'sft/step' ? 'SFT step' : 'iteration' }, ...keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
            },
            data,
            card,
          );
        }
      }
      const empty = byId('charts-empty');
      empty.hidden = drawn > 0;
      empty.textContent = drawn ? '' : 'no iterations recorded yet: the curves appear after the first iteration';
    };
    const renderStatus = (info) => {
      const s = info.status;
      const stateEl = byId('state');
      stateEl.textContent = s.state;
      stateEl.className = `state ${s.state}`;
      const progress = byId('progress');
      progress.max = Math.max(1, s.iterations);
      progress.value = s.iteration;
      byId('progress-text').textContent = `iteration ${s.iteration} of ${s.iterations}`;
      fillDl(byId('facts'), [
        ['algorithm', s.algorithm],
        ['environment', s.env],
        ['policy version', String(s.policyVersion)],
        ['reward (last iteration)', fmt(s.rewardMean)],
        ['success rate (last)', fmt(last('charts/success_rate'))],
        ['attempt', String(s.attempt)],
        ['submitted', fmtTime(s.submittedAt)],
        ['started', fmtTime(s.startedAt)],
        ['updated', fmtTime(s.updatedAt)],
        ['finished', fmtTime(s.finishedAt)],
        ['training time', fmtDuration(last('time/elapsed_s'))],
        ['learner', s.learner || '–'],
        ['run directory', s.runDir || '–'],
      ]);
      const error = byId('job-error');
      error.hidden = !s.error;
      error.textContent = s.error ? `error: ${s.error}` : '';
      if (!configShown) {
        byId('config').textContent = info.configText;
        configShown = true;
      }
    };
    const renderTables = () => {
      const eps = (rl['rollout/episodes_per_s'] || []).filter((v) => v !== null);
      fillDl(byId('throughput'), [
        ['episodes/s (last iteration)', fmt(last('rollout/episodes_per_s'))],
        ['episodes/s (mean over iterations)', fmt(eps.length ? eps.reduce((a, b) => a + b, 0) / eps.length : undefined)],
        ['generated tokens/s (last)', fmt(last('rollout/tokens_per_s'), 1)],
        ['episodes per iteration (last)', fmt(last('rollout/episodes'), 0)],
        ['collection time (last)', `${fmt(last('time/collect_s'))} s`],
        ['update time (last)', `${fmt(last('time/update_s'))} s`],
      ]);
      byId('failures').querySelector('tbody').replaceChildren(
        ...FAILURES.map(([key, label]) => {
          const col = (rl[key] || []).filter((v) => v !== null);
          const total = col.reduce((a, b) => a + b, 0);
          return el('tr', { 'data-cause': key }, el('td', { text: label }), el('td', { text: col.length ? String(total) : '–' }), el('td', { text: col.length ? String(col[col.length - 1]) : '–' }), el('td', { text: String(col.filter((v) => v > 0).length) }));
        }),
      );
    };
    const tick = async () => {
      let active = true;
      try {
        const info = await getJson(`/api/jobs/${encodedJob}`);
        if (attempt !== undefined && info.status.attempt !== attempt) reset();
        attempt = info.status.attempt;
        renderStatus(info);
        const t0 = performance.now();
        const metrics = await getJson(`/api/jobs/${encodedJob}/metrics?from=${next}`);
        const t1 = performance.now();
        ingest(metrics);
        next = metrics.next;
        renderStatus(info);
        renderTables();
        const t2 = performance.now();
        drawCharts();
        // Where the time of the latest update went (ms): fetching the metrics, merging them, drawing.
        shared.timings = { fetch: t1 - t0, ingest: t2 - t1, draw: performance.now() - t2 };
        clearMessage();
        active = ACTIVE.has(info.status.state);
        shared.polling = active;
        shared.next = next;
      } catch (err) {
        showMessage(`could not load the job: ${err.message}`);
      }
      markLoaded();
      if (active) setTimeout(tick, 3000);
    };
    await tick();
  }

  // ---------------------------------------------------------------- trajectories
  function tokenTitle(piece, advantage) {
    const ids = piece.ids.join(' ');
    const side = piece.isOutput ? 'policy' : 'environment';
    const what = piece.kind === 'special' ? `${piece.text} (id ${ids}, ${side})` : `${side} token${piece.ids.length > 1 ? 's' : ''} ${ids}`;
    const lp = piece.isOutput ? ` · log-prob ${piece.logProbs.map((v) => (typeof v === 'number' ? v.toFixed(4) : '–')).join(' ')}` : '';
    return `${what}${lp} · turn ${piece.turn} · advantage ${fmt(advantage, 4)}`;
  }
  function renderRollout(r) {
    const meta = el(
      'div',
      { class: 'meta' },
      el('span', { class: 'reward', text: `reward ${fmt(r.reward.total, 4)}` }),
      ...Object.entries(r.reward.parts).map(([name, value]) => el('span', { class: 'part', 'data-part': name, text: `${name} ${fmt(value, 4)}` })),
      el('span', { class: 'advantage', text: `advantage ${fmt(r.advantage, 4)}` }),
      el('span', { class: 'trained', text: r.trained ? 'trained' : 'not trained (|A| filter)' }),
      el('span', { text: `${r.finishReason} · ${r.turns} turns · policy v${r.policyVersion} · ${r.retries} retries · ${fmt(r.wallMs / 1000, 2)} s` }),
    );
    const segments = r.segments.map((pieces, s) =>
      el(
        'div',
        { class: 'tokens', 'data-segment': s },
        ...pieces.map((p) => el('span', { class: `tok ${p.kind}${p.kind === 'special' && !p.isOutput ? ' env-side' : ''}`, title: tokenTitle(p, r.advantage), text: p.text })),
      ),
    );
    return el('section', { class: `rollout${r.trained ? '' : ' untrained'}`, 'data-rollout': r.index }, el('h3', { text: `rollout ${r.index} · ${r.rolloutId}` }), meta, ...segments);
  }

  async function trajectoriesPage() {
    const stepSelect = byId('step');
    const groupSelect = byId('group');
    const params = new URLSearchParams(location.search);
    let index;
    try {
      index = await getJson(`/api/jobs/${encodedJob}/samples`);
    } catch (err) {
      showMessage(`could not load the recorded trajectories: ${err.message}`);
      markLoaded();
      return;
    }
    // The newest record of a step wins (a resumed job records the iterations it redoes again).
    const steps = new Map();
    for (const s of index.steps) steps.set(s.step, s);
    if (!steps.size) {
      showMessage('this job has no recorded trajectories yet: the learner records a few whole groups every iteration, so they appear after the first one', false);
      markLoaded();
      return;
    }
    const ordered = [...steps.keys()].sort((a, b) => b - a);
    stepSelect.replaceChildren(...ordered.map((s) => el('option', { value: s, text: s })));
    const wantedStep = Number(params.get('step'));
    const step = params.has('step') && steps.has(wantedStep) ? wantedStep : ordered[0];
    const notes = [];
    if (params.has('step') && !steps.has(wantedStep)) notes.push(`iteration ${params.get('step')} is not recorded (the newest ${ordered.length} are kept); showing ${step}`);
    stepSelect.value = String(step);
    const fillGroups = (s, wanted) => {
      const groups = steps.get(s).groups;
      groupSelect.replaceChildren(...groups.map((g) => el('option', { value: g.groupIndex, text: `${g.groupIndex} (task ${g.task.split}#${g.task.index}, ${g.rollouts} rollouts)` })));
      const pick = groups.some((g) => g.groupIndex === wanted) ? wanted : groups[0]?.groupIndex;
      if (pick !== undefined) groupSelect.value = String(pick);
      return pick;
    };
    const wantedGroup = Number(params.get('group'));
    let group = fillGroups(step, wantedGroup);
    if (params.has('group') && group !== wantedGroup) notes.push(`group ${params.get('group')} is not recorded for iteration ${step}; showing group ${group}`);
    const load = async (s, g) => {
      const url = new URL(location.href);
      url.searchParams.set('step', String(s));
      url.searchParams.set('group', String(g));
      history.replaceState(null, '', url);
      const container = byId('rollouts');
      if (g === undefined) {
        container.replaceChildren();
        showMessage(`iteration ${s} has no recorded groups`, false);
        return;
      }
      try {
        const data = await getJson(`/api/jobs/${encodedJob}/samples/${s}/${g}`);
        byId('task').textContent = `task ${data.task.split}#${data.task.index} (seed ${data.task.seed})`;
        container.replaceChildren(...data.rollouts.map(renderRollout));
        shared.trajectory = { step: s, group: g, rollouts: data.rollouts.length };
        if (notes.length) showMessage(notes.splice(0).join('; '), false);
        else clearMessage();
      } catch (err) {
        container.replaceChildren();
        showMessage(`could not load iteration ${s}, group ${g}: ${err.message}`);
      }
    };
    stepSelect.addEventListener('change', () => {
      const s = Number(stepSelect.value);
      group = fillGroups(s, group);
      void load(s, group).then(markLoaded);
    });
    groupSelect.addEventListener('change', () => {
      group = Number(groupSelect.value);
      void load(Number(stepSelect.value), group).then(markLoaded);
    });
    await load(step, group);
    markLoaded();
  }

  const run = { jobs: jobsPage, job: jobPage, trajectories: trajectoriesPage }[page];
  if (run && !byId('message').classList.contains('error')) {
    run().catch((err) => {
      showMessage(`the page failed: ${err.message}`);
      markLoaded();
    });
  } else markLoaded();
})();
