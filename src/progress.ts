/**
 * Progress lines for long runs, shown only on a terminal. A rank's stdout and stderr are pipes, so
 * a rank cannot tell by itself: the launcher sets PROGRESS_ENV=1 when its own stderr is a TTY and
 * renders the lines that start with PROGRESS_MARKER as one status line, updated in place. A
 * process run without the launcher updates its own line when its stderr is a TTY.
 */
export const PROGRESS_ENV = 'RINGTRAIN_PROGRESS';
export const PROGRESS_MARKER = 'ringtrain-progress: ';

/** At most one update per this many ms reaches the launcher (a line each, through a pipe). */
const MIN_INTERVAL_MS = 250;

export class ProgressLine {
  private last = Number.NEGATIVE_INFINITY; // the first update always shows, however young the process
  private shown = false;

  private constructor(
    private readonly viaLauncher: boolean,
    private readonly write: (text: string) => void,
  ) {}

  /** A progress line for this process, or undefined where nobody watches a terminal. */
  static forProcess(env: NodeJS.ProcessEnv = process.env, stream: NodeJS.WriteStream = process.stderr): ProgressLine | undefined {
    const write = (t: string): void => void stream.write(t);
    if (env.RINGTRAIN_LAUNCHER === '1') return env[PROGRESS_ENV] === '1' ? new ProgressLine(true, write) : undefined;
    return stream.isTTY ? new ProgressLine(false, write) : undefined;
  }

  update(text: string): void {
    const now = performance.now();
    if (now - this.last < MIN_INTERVAL_MS) return;
    this.last = now;
    this.shown = true;
    this.write(this.viaLauncher ? `${PROGRESS_MARKER}${text}\n` : `\r\x1b[K${text}`);
  }

  /** Removes the line (before results are printed, and at the end). */
  clear(): void {
    if (!this.shown) return;
    this.shown = false;
    this.last = Number.NEGATIVE_INFINITY;
    this.write(this.viaLauncher ? `${PROGRESS_MARKER}\n` : '\r\x1b[K');
  }
}
