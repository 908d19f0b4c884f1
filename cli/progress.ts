/**
 * A one-line progress display for training: iteration, reward, episodes/s and ETA. On a terminal it
 * redraws one line; otherwise (logs, CI) it prints a line every `everySec` seconds and at the end.
 */
import { formatDuration } from '../core/format.js';

export { formatDuration };

/** What the bar shows after each iteration. */
export interface ProgressUpdate {
  readonly iteration: number;
  readonly total: number;
  readonly reward: number;
  readonly success: number;
  readonly episodesPerSec: number;
  readonly elapsedSec: number;
}

/** The progress line for an update (no terminal control codes). */
export function progressLine(u: ProgressUpdate, width = 24): string {
  const frac = u.total > 0 ? Math.min(1, u.iteration / u.total) : 1;
  const filled = Math.round(frac * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const perIter = u.iteration > 0 ? u.elapsedSec / u.iteration : NaN;
  const eta = formatDuration(perIter * (u.total - u.iteration));
  return `iter ${u.iteration}/${u.total} ${bar} reward ${u.reward.toFixed(3)} success ${(100 * u.success).toFixed(0)}% ${u.episodesPerSec.toFixed(1)} ep/s ETA ${eta}`;
}

/** Renders progress to a stream. */
export class ProgressBar {
  private lastPrint = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly everySec = 10,
  ) {}

  update(u: ProgressUpdate): void {
    const line = progressLine(u);
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (Date.now() - this.lastPrint >= this.everySec * 1000 || u.iteration === u.total) {
      this.stream.write(`${line}\n`);
      this.lastPrint = Date.now();
    }
  }

  /** Print a log line without breaking the bar. */
  log(line: string): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\r\x1b[2K');
    this.stream.write(`${line}\n`);
  }

  done(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
  }
}
