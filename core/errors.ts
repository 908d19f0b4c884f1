/**
 * Named errors with a stable `code`. Classify once: `retryable: false` means bad input or a protocol
 * mismatch (never retried; BullMQ UnrecoverableError semantics), `true` means a transient failure.
 */
export class HorizonError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean; context?: Record<string, unknown> } = {}) {
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
