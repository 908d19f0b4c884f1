/**
 * Named errors with a stable `code`. Classify once: `retryable: false` means bad input or a protocol
 * mismatch (never retried; BullMQ UnrecoverableError semantics), `true` means a transient failure.
 */
/**
 * Every code a user can see, what it means and what to do: the one list (docs/errors.md is written from
 * it, and a test keeps the two in step). `HorizonError` accepts only these codes.
 */
export const ERROR_CODES = {
  E_CONFIG: {
    meaning: 'A config file, an override (`--set`) or an option is invalid.',
    todo: 'The message names the field path and the valid values; `horizon validate <config>` shows the resolved config, `horizon config-reference` every field.',
  },
  E_USAGE: {
    meaning: 'A command-line flag has a bad value.',
    todo: 'Fix the flag named in the message; `horizon <command> --help` lists the flags.',
  },
  E_PLUGIN: {
    meaning: 'An environment module does not satisfy the Env contract, or fails to load.',
    todo: 'The message lists what is missing or wrong (an export, a method, a value it returned); see docs/environments.md.',
  },
  E_ENV: {
    meaning: 'An environment failed during an episode (an exception in reset, step or score).',
    todo: 'Retried with a fresh environment; a group whose retries all fail is dropped with the reason (`horizon logs <job>`). Fix the environment.',
  },
  E_PROTOCOL: {
    meaning: 'A queue payload does not match the protocol (another version of horizon wrote it).',
    todo: 'Run the same horizon version on the learner and every worker; the job is never retried with the bad payload.',
  },
  E_CHECKPOINT: {
    meaning: 'A checkpoint or stored weight blob is missing, truncated, does not match the model, or fails its hash check.',
    todo: 'Nothing is deleted: the message names the file and the older checkpoints; move the bad one aside and `horizon resume`, or fix `model.*` to match it.',
  },
  E_TRAINING: {
    meaning: 'Training diverged or a run-level invariant broke (non-finite returns, every group of an iteration failed).',
    todo: 'Lower `optim.lr`, check the rewards the environment returns, or read the failed groups in `horizon logs <job>`.',
  },
  E_SERVICE: {
    meaning:
      'A required service is missing or unreachable: redis-server, a Redis URL, a GPU adapter for `backend: engine`, a tfjs backend.',
    todo: 'The message says what is missing; `bash scripts/setup.sh` installs redis-server (and, with --with-lavapipe, a CPU Vulkan driver).',
  },
  E_GPU: {
    meaning: 'The GPU engine failed: the device was lost, ran out of memory, or a kernel did not compile.',
    todo: 'Out of memory names what was allocated and how many bytes: use a smaller model or minibatch. A lost device: restart the process; the learner resumes from its last checkpoint.',
  },
  E_JOB_NOT_FOUND: {
    meaning: 'No training job with this id in this Redis.',
    todo: '`horizon status` lists the jobs (check `--redis` and `--prefix`).',
  },
  E_JOB_EXISTS: {
    meaning: 'A job with this id already exists.',
    todo: '`horizon resume <job>` continues it; a new `horizon submit` gets a new id.',
  },
  E_JOB_DONE: {
    meaning: 'The job already completed all its iterations.',
    todo: 'Nothing to resume; start a new job (e.g. with `train.initFrom` pointing at this run).',
  },
  E_JOB_RUNNING: {
    meaning: 'The job is running on a learner.',
    todo: '`horizon cancel <job>` first, or wait for it.',
  },
  E_DASHBOARD_UNSAFE: {
    meaning: 'The dashboard would be served on a non-loopback address without a token.',
    todo: 'Pass `--token <secret>` (or keep the default 127.0.0.1); see docs/dashboard.md.',
  },
} as const satisfies Record<string, { meaning: string; todo: string }>;

/** One of the codes of `ERROR_CODES`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** docs/errors.md: every code, what it means and what to do (`npm run docs:errors` writes it). */
export function renderErrorReference(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.meaning} | ${e.todo} |`);
  return [
    '# Errors',
    '',
    "The errors of horizon's own checks carry one of these codes: the CLI prints `horizon: [CODE] message`",
    '(with its causes), job records and worker logs keep the code. Retryable ones (`E_ENV`, a transient',
    '`E_SERVICE`, a lost GPU) are retried or resumed; the others are bad input and are not retried. Some',
    'lower-level argument checks still raise a plain `RangeError` or `Error` without a code.',
    'Generated from `core/errors.ts` by `npm run docs:errors`.',
    '',
    '| code | means | what to do |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

export class HorizonError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.context = options.context ?? {};
  }
}

/** A config file or override is invalid; the message names the field path and the valid choices. */
export class ConfigError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_CONFIG', message, options);
  }
}

/** A user's environment module does not satisfy the Env contract, or fails to load. */
export class PluginError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_PLUGIN', message, options);
  }
}

/** A queue payload does not match the protocol (wrong version or shape). Never retried. */
export class ProtocolError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_PROTOCOL', message, options);
  }
}

/** A checkpoint or stored weight blob is missing, truncated or fails its hash check. */
export class CheckpointError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_CHECKPOINT', message, options);
  }
}

/** An environment failed during an episode (exception in reset/step/score). Retried with a fresh env. */
export class EnvError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_ENV', message, { ...options, retryable: true });
  }
}

/** Training diverged or a run-level invariant broke (NaN loss, KL abort that cannot continue). */
export class TrainingError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super('E_TRAINING', message, options);
  }
}

/** A required external service (redis-server, a GPU adapter) is missing or unreachable. */
export class ServiceError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown>; retryable?: boolean } = {}) {
    super('E_SERVICE', message, options);
  }
}

/**
 * The GPU engine failed: the device was lost, ran out of memory, or a kernel could not be built. The
 * message names the shape bucket and bytes involved; the learner resumes from its last checkpoint.
 */
export class GpuError extends HorizonError {
  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown>; retryable?: boolean } = {}) {
    super('E_GPU', message, options);
  }
}

/** Render an error with its cause chain for a terminal. */
export function describeError(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  let depth = 0;
  while (current !== undefined && current !== null && depth < 5) {
    if (current instanceof HorizonError) lines.push(`${depth ? 'caused by: ' : ''}[${current.code}] ${current.message}`);
    else if (current instanceof Error) lines.push(`${depth ? 'caused by: ' : ''}${current.message}`);
    else lines.push(`${depth ? 'caused by: ' : ''}${String(current)}`);
    current = current instanceof Error ? current.cause : undefined;
    depth += 1;
  }
  return lines.join('\n');
}
