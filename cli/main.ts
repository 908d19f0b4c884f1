/**
 * The `horizon` command line. Each command is a small function over the library: configs → jobs →
 * learner / workers. Errors print their code and message (with causes) and exit 1; nothing is lost on a
 * bad input because validation happens before anything is written or enqueued.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HorizonError, ServiceError, describeError } from '../core/errors.js';
import { loadConfigFile } from '../configs/resolve.js';
import { loadEnvDefinition, validateEnvOptions } from '../envs/loader.js';
import { renderConfigReference } from '../configs/reference.js';
import { connectRedis, redactUrl, resolveRedisUrl } from '../rollout/connection.js';
import { JobControl, newJobId, type JobStatus } from '../rollout/jobs.js';
import { DEFAULT_PREFIX } from '../rollout/protocol.js';
import { RolloutWorker } from '../rollout/worker.js';
import { LearnerService } from '../trainer/service.js';
import { positiveInt, nonNegativeInt } from './args.js';
import { runLocal } from './local.js';
import { evalCommand, formatEval, formatMuZeroEval, muzeroEvalCommand } from './eval.js';
import { loadRunConfig } from '../trainer/evaluate.js';
import { DEFAULT_DASHBOARD_PORT, startDashboard } from '../dashboard/server.js';

const collect = (value: string, previous: string[]) => [...previous, value];

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name('horizon')
    .description("Train long-horizon agents with RL: Redis/BullMQ rollout workers and a learner on horizon's GPU engine or tfjs.")
    .showHelpAfterError()
    .exitOverride();
  const redisOption = () =>
    new Option('--redis <url>', 'Redis URL (redis://[:password@]host:port[/db], rediss:// for TLS); default $REDIS_URL');
  const prefixOption = () => new Option('--prefix <prefix>', 'key prefix shared by every process of a deployment').default(DEFAULT_PREFIX);

  program
    .command('train')
    .description('train on this machine: embedded redis-server (unless --redis), a learner and rollout worker processes')
    .argument('<config>', 'YAML config file')
    .option('--set <path=value>', 'override a config field (repeatable)', collect, [])
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--run-dir <dir>', 'run directory (default runs/<job id>)')
    .option('--workers <n>', 'rollout worker processes (default: workers.count of the config)')
    .option('--no-progress', 'no progress bar (log lines only)')
    .option('--no-dashboard', 'do not serve the dashboard (default: on a free loopback port)')
    .action(async (file: string, opts) => {
      const config = loadConfigFile(file, opts.set);
      const jobId = newJobId(config.name);
      const runDir = path.resolve(opts.runDir ?? path.join('runs', jobId));
      exitCode = await runLocal({
        runDir,
        jobId,
        redisFlag: opts.redis,
        prefix: opts.prefix,
        workers: opts.workers,
        progress: opts.progress,
        dashboard: opts.dashboard,
        submit: config,
      });
    });

  program
    .command('submit')
    .description('enqueue a training job on a Redis for `horizon learner` and `horizon worker` processes')
    .argument('<config>', 'YAML config file')
    .option('--set <path=value>', 'override a config field (repeatable)', collect, [])
    .addOption(redisOption())
    .addOption(prefixOption())
    .action(async (file: string, opts) => {
      const config = loadConfigFile(file, opts.set);
      await withJobs(opts, async (jobs, url) => {
        const jobId = await jobs.submit(config);
        console.log(jobId);
        console.error(`submitted ${jobId} to ${redactUrl(url)}; follow it with \`horizon logs ${jobId} --follow\``);
      });
    });

  program
    .command('learner')
    .description('serve training jobs from the queue (one at a time; one learner per GPU)')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--runs-dir <dir>', 'where run directories are created', 'runs')
    .action(async (opts) => {
      const url = requireRedis(opts.redis);
      const redis = await connectRedis(url);
      const service = new LearnerService({ redis, redisUrl: url, prefix: opts.prefix, runsDir: path.resolve(opts.runsDir) });
      await service.start();
      await serveUntilSignal(async () => {
        await service.close();
        redis.disconnect();
      });
    });

  program
    .command('worker')
    .description('run rollout groups from the queue')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--concurrency <n>', 'groups processed at once', '1')
    .addOption(
      new Option('--backend <name>', 'tensor backend (default: the job config)').choices([
        'auto',
        'engine',
        'webgpu',
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .action(async (opts) => {
      const worker = new RolloutWorker({
        redisUrl: requireRedis(opts.redis),
        prefix: opts.prefix,
        concurrency: positiveInt(opts.concurrency, '--concurrency'),
        backend: opts.backend,
      });
      await worker.start();
      // The group in progress may finish during the grace period; an unfinished one is redone by another worker.
      await serveUntilSignal(() => worker.close());
    });

  program
    .command('status')
    .description('list training jobs, or show one')
    .argument('[job]', 'job id')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--json', 'machine-readable output')
    .action(async (jobId: string | undefined, opts) => {
      await withJobs(opts, async (jobs) => {
        const listed = jobId ? [await jobs.status(jobId)] : await jobs.list();
        // A running job whose learner holds no lease has lost its learner: say so, and what to do.
        const rows = await Promise.all(
          listed.map(async (r) => ({
            ...r,
            learnerGone: (r.state === 'running' || r.state === 'cancelling') && !(await jobs.learnerAlive(r.jobId)),
          })),
        );
        if (opts.json) console.log(JSON.stringify(jobId ? rows[0] : rows, null, 2));
        else if (rows.length === 0) console.log('no training jobs');
        else console.log(formatStatusTable(rows));
      });
    });

  program
    .command('logs')
    .description("print a job's log")
    .argument('<job>', 'job id')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('-f, --follow', 'keep printing until the job ends')
    .action(async (jobId: string, opts) => {
      await withJobs(opts, async (jobs) => {
        let from = 0;
        for (;;) {
          const lines = await jobs.logs(jobId, from);
          for (const line of lines) console.log(line);
          from += lines.length;
          const { state } = await jobs.status(jobId);
          if (!opts.follow || state === 'completed' || state === 'failed' || state === 'cancelled') break;
          await new Promise((r) => setTimeout(r, 1000));
        }
      });
    });

  program
    .command('cancel')
    .description('stop a job (queued: at once; running: at the learner’s next check)')
    .argument('<job>', 'job id')
    .addOption(redisOption())
    .addOption(prefixOption())
    .action(async (jobId: string, opts) => {
      await withJobs(opts, async (jobs) => console.log(`${jobId}: ${await jobs.cancel(jobId)}`));
    });

  program
    .command('resume')
    .description('continue a job from its latest checkpoint: on the cluster (with --redis) or locally from its run directory')
    .argument('<job>', 'job id')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--run-dir <dir>', 'local run directory (default runs/<job id>)')
    .option('--workers <n>', 'local rollout worker processes (default: workers.count of the config)')
    .option('--no-progress', 'no progress bar (log lines only)')
    .option('--no-dashboard', 'do not serve the dashboard (default: on a free loopback port)')
    .action(async (jobId: string, opts) => {
      if (resolveRedisUrl(opts.redis)) {
        await withJobs(opts, async (jobs) => {
          await jobs.resume(jobId);
          console.log(`${jobId}: queued again; a \`horizon learner\` continues it from its latest checkpoint`);
        });
        return;
      }
      const runDir = path.resolve(opts.runDir ?? path.join('runs', jobId));
      exitCode = await runLocal({
        runDir,
        jobId,
        prefix: opts.prefix,
        workers: opts.workers,
        progress: opts.progress,
        dashboard: opts.dashboard,
      });
    });

  program
    .command('dashboard')
    .description('serve the web dashboard: jobs, live curves, trajectories and the queues (bull-board)')
    .addOption(redisOption())
    .addOption(prefixOption())
    .option('--port <n>', 'port (0 picks a free one)', String(DEFAULT_DASHBOARD_PORT))
    .option('--host <host>', 'address to bind; anything but loopback needs --token', '127.0.0.1')
    .option('--token <secret>', 'require "Authorization: Bearer <secret>" (or ?token=<secret>) on every request')
    .option('--allow-actions', 'let the queue board retry, remove and clean jobs (read-only otherwise)')
    .action(async (opts) => {
      const dashboard = await startDashboard({
        redisUrl: requireRedis(opts.redis),
        prefix: opts.prefix,
        port: nonNegativeInt(opts.port, '--port'),
        host: opts.host,
        token: opts.token,
        allowActions: opts.allowActions === true,
      });
      console.log(
        `dashboard: ${dashboard.url}${opts.token ? ' (send "Authorization: Bearer <token>" or open it once with ?token=<token>)' : ''}`,
      );
      await serveUntilSignal(() => dashboard.close());
    });

  program
    .command('eval')
    .description(
      "evaluate checkpoints of a run on held-out tasks (with the env's metrics and baselines; accuracy vs thinking budget for delethink / longcot runs; speed-up over the XLA-like baseline per program for muzero runs)",
    )
    .argument('<run-dir>', 'run directory written by `horizon train` (runs/<job id>)')
    .option('--checkpoint <n|last>', 'checkpoint iteration to evaluate (repeatable, e.g. --checkpoint 0 --checkpoint last)', collect, [])
    .option('--split <name>', 'task split (default: test if the env has it, else eval)')
    .option('--set <path=value>', "override a field of the run's config, e.g. env.options.length=24 (repeatable)", collect, [])
    .option('--tasks <n>', 'evaluate the first n tasks of the split (muzero: the first n programs; default: all, at most 1000)')
    .option(
      '--programs <paths...>',
      'muzero runs: program files (.json, MiniMalloc .csv) or directories of them (default: the committed held-out set)',
    )
    .option('--samples <n>', 'episodes per task', '1')
    .option('--batch <n>', 'episodes generated together', '32')
    .option('--chunks <list>', 'delethink / longcot: chunk caps I′ to report, e.g. 1,2,4,8 or 1..8 (traces run to the largest)')
    .option('--backend <name>', "tensor backend (default: the run's)")
    .option('--no-baselines', "skip the environment's baselines")
    .option('--show <n>', 'print the first n episodes of each checkpoint, decoded (context and output of every turn / chunk)', '0')
    .option('--json <file>', 'write the results as JSON')
    .option('--plot <file.svg>', 'write accuracy vs thinking budget as an SVG plot')
    .action(async (runDir: string, opts) => {
      const runConfig = loadRunConfig(path.resolve(runDir), opts.set);
      if (runConfig.algorithm === 'muzero') {
        const evals = await muzeroEvalCommand(path.resolve(runDir), runConfig, {
          checkpoint: opts.checkpoint,
          programs: opts.programs,
          tasks: opts.tasks === undefined ? undefined : positiveInt(opts.tasks, '--tasks'),
          split: opts.split,
          chunks: opts.chunks,
          plot: opts.plot,
          show: nonNegativeInt(opts.show, '--show'),
          backend: opts.backend,
          baselines: opts.baselines,
          json: opts.json,
        });
        console.log(formatMuZeroEval(evals));
        return;
      }
      const evals = await evalCommand(path.resolve(runDir), {
        checkpoint: opts.checkpoint,
        programs: opts.programs,
        set: opts.set,
        split: opts.split,
        tasks: opts.tasks === undefined ? undefined : positiveInt(opts.tasks, '--tasks'),
        samples: positiveInt(opts.samples, '--samples'),
        batch: positiveInt(opts.batch, '--batch'),
        chunks: opts.chunks,
        backend: opts.backend,
        baselines: opts.baselines,
        show: nonNegativeInt(opts.show, '--show'),
        json: opts.json,
        plot: opts.plot,
      });
      console.log(formatEval(evals));
    });

  program
    .command('validate')
    .description("check a config — and its environment's options and module — and print it resolved (defaults, preset and derived values)")
    .argument('<config>', 'YAML config file')
    .option('--set <path=value>', 'override a config field (repeatable)', collect, [])
    .action(async (file: string, opts) => {
      const config = loadConfigFile(file, opts.set);
      // The environment's own option schema and the plug-in contract are checked too, as a training job would.
      if (config.env.name !== undefined || config.env.module !== undefined) {
        const env = await loadEnvDefinition({ name: config.env.name, module: config.env.module }, config.derived.configDir);
        validateEnvOptions(env, config.env.options);
      }
      console.log(JSON.stringify(config, null, 2));
    });

  program
    .command('config-reference')
    .description('print (or write) the reference of every config field')
    .option('--out <file>', 'write to this file')
    .action(async (opts) => {
      const text = renderConfigReference();
      if (opts.out) writeFileSync(opts.out, text);
      else process.stdout.write(text);
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    console.error(`horizon: ${describeError(err)}`);
    if (!(err instanceof HorizonError) && process.env.HORIZON_DEBUG) console.error((err as Error).stack);
    return 1;
  }
  return exitCode;
}

async function withJobs(opts: { redis?: string; prefix: string }, fn: (jobs: JobControl, url: string) => Promise<void>): Promise<void> {
  const url = requireRedis(opts.redis);
  const redis = await connectRedis(url);
  const jobs = new JobControl(redis, url, { prefix: opts.prefix });
  try {
    await fn(jobs, url);
  } finally {
    await jobs.close();
    redis.disconnect();
  }
}

function requireRedis(flag: string | undefined): string {
  const url = resolveRedisUrl(flag);
  if (!url)
    throw new ServiceError(
      'no Redis given: pass --redis redis://host:port or set REDIS_URL (`horizon train` starts its own when neither is set)',
    );
  return url;
}

/**
 * For the long-running commands (learner, worker, dashboard): wait for SIGINT/SIGTERM, give `close` up
 * to 10 s to finish cleanly, then exit 0.
 */
async function serveUntilSignal(close: () => Promise<unknown>): Promise<never> {
  await untilSignal();
  await Promise.race([close(), new Promise((r) => setTimeout(r, 10_000))]);
  process.exit(0);
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      // A second signal while shutting down exits at once.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

function formatStatusTable(rows: ReadonlyArray<JobStatus & { learnerGone?: boolean }>): string {
  const header = ['job', 'state', 'iteration', 'version', 'reward', 'algorithm', 'env', 'updated'];
  const body = rows.map((r) => [
    r.jobId,
    r.learnerGone ? `${r.state} (no learner: horizon resume ${r.jobId})` : r.state,
    `${r.iteration}/${r.iterations}`,
    String(r.policyVersion),
    r.rewardMean === undefined ? '–' : r.rewardMean.toFixed(3),
    r.algorithm,
    r.env,
    r.updatedAt ? new Date(r.updatedAt).toISOString().replace('T', ' ').slice(0, 19) : '–',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const extra = rows.length === 1 && rows[0].error ? `\nerror: ${rows[0].error}` : '';
  return [line(header), ...body.map(line)].join('\n') + extra;
}
