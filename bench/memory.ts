/**
 * Peak memory of the learner and the rollout workers, and whether it grows: a real `horizon train` run of
 * 100 iterations of the tiny config (embedded redis-server, learner in the CLI process, worker child
 * processes), with VmRSS and VmHWM of every process sampled from /proc/<pid>/status while the iteration
 * counter is read from the run's metrics.jsonl. Reports RSS at iterations 10, 50 and 100, the peak, and
 * the least-squares slope of RSS over iterations 20–100 (MB per 10 iterations; ~0 means no growth).
 *
 *   npx tsx bench/memory.ts [--iterations 100] [--config test/fixtures/configs/tiny.yaml] [--set k=v]…
 *                           [--workers 2] [--interval-ms 200] [--keep-run-dir] [--json out.json]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HORIZON_BIN,
  REPO_ROOT,
  benchConfig,
  childPids,
  formatNumber,
  intFlag,
  machineInfo,
  machineLine,
  markdownTable,
  parseFlags,
  processCommandLine,
  processMemoryMb,
  progress,
  scratchDir,
  sleep,
  slope,
  writeJsonIfAsked,
} from './lib.js';

const USAGE = `npx tsx bench/memory.ts [flags]
  --iterations N     training iterations (default 100)
  --config FILE      run config (default test/fixtures/configs/tiny.yaml)
  --set key=value    config override (repeatable)
  --workers N        rollout worker processes (default: workers.count of the config)
  --interval-ms MS   sampling interval (default 200)
  --keep-run-dir     keep the run directory (default: removed; its path is printed)
  --json FILE        also write every sample as JSON`;

/** Iterations at which RSS is reported (plus the last one of a longer run). */
const REPORTED_ITERATIONS = [10, 50, 100];
/** Growth is fitted from this iteration on (the first iterations warm up caches and JIT). */
const SLOPE_FROM = 20;

/** One observation of the run. */
interface Sample {
  /** Seconds since the run started. */
  readonly t: number;
  /** Iterations completed (records with step ≥ 1 in metrics.jsonl). */
  readonly iteration: number;
  /** Memory per process role label (`learner`, `worker 1`, …, `redis-server`). */
  readonly memory: Record<string, { rssMb: number; hwmMb: number }>;
  /** Metric values whose name mentions tensors (only if the learner records any). */
  readonly tensors?: number;
}

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, {
    iterations: '100',
    config: 'test/fixtures/configs/tiny.yaml',
    set: [] as string[],
    workers: '',
    'interval-ms': '200',
    'keep-run-dir': false,
    json: '',
  });
  const iterations = intFlag(flags.iterations, 'iterations');
  const intervalMs = intFlag(flags['interval-ms'], 'interval-ms', 50);
  const sets = [`train.iterations=${iterations}`, ...flags.set];
  const config = benchConfig(flags.config, sets); // validates the overrides before anything starts
  const loadAtStart = os.loadavg()[0];
  const run = scratchDir('memory');
  const runDir = path.join(run.dir, 'run');
  const args = [
    HORIZON_BIN,
    'train',
    path.resolve(REPO_ROOT, flags.config),
    ...sets.flatMap((s) => ['--set', s]),
    '--run-dir',
    runDir,
    '--no-progress',
  ];
  if (flags.workers) args.push('--workers', String(intFlag(flags.workers, 'workers', 0)));

  progress(`horizon train ${config.name}, ${iterations} iterations, run dir ${runDir}`);
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keepTail = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keepTail);
  child.stderr!.on('data', keepTail);
  let exitCode: number | string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal ?? -1;
      resolve();
    }),
  );
  const stopChild = () => child.kill('SIGTERM');
  process.once('SIGINT', stopChild);
  process.once('SIGTERM', stopChild);

  const learnerPid = child.pid as number;
  const labels = new Map<number, string>();
  let workerCount = 0;
  const samples: Sample[] = [];
  let lastReported = 0;
  while (exitCode === undefined) {
    const memory: Sample['memory'] = {};
    const learner = processMemoryMb(learnerPid);
    if (learner) memory.learner = learner;
    for (const pid of childPids(learnerPid)) {
      if (!labels.has(pid)) {
        const cmd = processCommandLine(pid);
        if (/\bworker\b/.test(cmd)) labels.set(pid, `worker ${++workerCount}`);
        else if (/redis-server/.test(cmd)) labels.set(pid, 'redis-server');
        else continue;
      }
      const m = processMemoryMb(pid);
      if (m) memory[labels.get(pid)!] = m;
    }
    const metrics = readMetrics(path.join(runDir, 'metrics.jsonl'));
    samples.push({ t: (performance.now() - started) / 1000, iteration: metrics.iteration, memory, tensors: metrics.tensors });
    if (metrics.iteration >= lastReported + 10) {
      lastReported = metrics.iteration - (metrics.iteration % 10);
      progress(`iteration ${metrics.iteration}/${iterations}: learner ${formatNumber(memory.learner?.rssMb ?? Number.NaN)} MB`);
    }
    await Promise.race([exited, sleep(intervalMs)]);
  }
  await exited;
  process.off('SIGINT', stopChild);
  process.off('SIGTERM', stopChild);
  const wallSec = (performance.now() - started) / 1000;
  const finalIteration = readMetrics(path.join(runDir, 'metrics.jsonl')).iteration;
  if (exitCode !== 0) progress(`horizon train exited with ${exitCode}; output tail:\n${output.slice(-4000)}`);
  const backend = /backend: (\S+)/.exec(output)?.[1] ?? config.backend;

  const reported = finalIteration > 100 ? [...REPORTED_ITERATIONS, finalIteration] : REPORTED_ITERATIONS;
  const roles = ['learner', ...[...labels.values()].filter((l) => l.startsWith('worker')), 'redis-server'].filter((r) =>
    samples.some((s) => s.memory[r]),
  );
  const rows = roles.map((role) => summarise(role, samples, reported, finalIteration));
  const lines = [
    `## Memory over ${finalIteration} iterations (${config.name}: \`horizon train ${flags.config} ${sets.map((s) => `--set ${s}`).join(' ')}\`)`,
    '',
    machineLine(machineInfo(backend, loadAtStart)),
    '',
    markdownTable(
      ['process', ...reported.map((i) => `RSS @${i} MB`), 'peak MB (VmHWM)', `slope ${SLOPE_FROM}→${iterations} MB/10 it`],
      rows.map((r) => [
        r.role,
        ...r.atIterations.map((v) => (v === undefined ? '–' : v)),
        r.peakMb,
        Number.isNaN(r.slopePer10) ? '–' : r.slopePer10,
      ]),
    ),
    '',
    `Run: ${finalIteration}/${iterations} iterations in ${wallSec.toFixed(0)} s, exit ${exitCode}; ${samples.length} samples every ${intervalMs} ms.`,
    `RSS @N is the first sample after iteration N finished (for the last iteration: the process's last sample before the run ended);`,
    `the slope is a least-squares fit over the first sample of each iteration from ${SLOPE_FROM} on.`,
  ];
  const tensorRow = reported.map((i) => samples.find((s) => s.iteration >= i && s.tensors !== undefined)?.tensors);
  lines.push(
    tensorRow.some((v) => v !== undefined)
      ? `Learner tfjs tensors @${reported.join('/')}: ${tensorRow.map((v) => v ?? '–').join(' / ')}.`
      : 'Learner tfjs tensor count: not recorded in the metrics, so not reported.',
  );
  if (flags['keep-run-dir']) lines.push(`Run directory kept: ${runDir}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonIfAsked(flags.json || undefined, { benchmark: 'memory', config: flags.config, sets, exitCode, wallSec, rows, samples });
  if (!flags['keep-run-dir']) run.remove();
  if (exitCode !== 0) process.exitCode = 1;
}

/** Iterations completed so far and, if the learner records one, its latest tensor count. */
function readMetrics(file: string): { iteration: number; tensors?: number } {
  if (!existsSync(file)) return { iteration: 0 };
  let iteration = 0;
  let tensors: number | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const record = JSON.parse(line) as Record<string, number>;
      if (record.step >= 1) iteration = Math.max(iteration, record.step);
      for (const [k, v] of Object.entries(record)) if (/tensor/i.test(k) && typeof v === 'number') tensors = v;
    } catch {
      // The line being written right now.
    }
  }
  return { iteration, tensors };
}

interface RoleSummary {
  readonly role: string;
  readonly atIterations: (number | undefined)[];
  readonly peakMb: number;
  readonly slopePer10: number;
}

function summarise(role: string, samples: readonly Sample[], reported: readonly number[], finalIteration: number): RoleSummary {
  const mine = samples.filter((s) => s.memory[role]);
  const last = mine[mine.length - 1];
  // The run ends right after its last iteration, often before a sample sees it: then the process's last sample stands for it.
  const atIterations = reported.map(
    (i) => (mine.find((s) => s.iteration >= i) ?? (finalIteration >= i ? last : undefined))?.memory[role].rssMb,
  );
  const peakMb = Math.max(...mine.map((s) => s.memory[role].hwmMb));
  const perIteration = new Map<number, number>();
  for (const s of mine)
    if (s.iteration >= SLOPE_FROM && !perIteration.has(s.iteration)) perIteration.set(s.iteration, s.memory[role].rssMb);
  const fit = slope([...perIteration].map(([x, y]) => ({ x, y })));
  return { role, atIterations, peakMb, slopePer10: 10 * fit };
}

main().catch((err) => {
  process.stderr.write(`bench/memory: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
