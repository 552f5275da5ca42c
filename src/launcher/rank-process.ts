/**
 * One rank's process as the launcher sees it: the local rank wrapper, or the ssh client that runs
 * the wrapper on the rank's host. Lives from start() until its `exited` promise resolves.
 *
 * Stopping goes gently first: closing stdin makes the wrapper terminate the rank's process group
 * (over ssh too, as EOF). Signals to the local process are the fallback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { PROGRESS_MARKER } from '../progress.js';
import { OutputPrefixer } from './output-prefixer.js';
import { parseStartedMarker } from './rank-wrapper.js';
import type { RankPlacement } from './slots.js';

export interface RankExit {
  /** Exit status of the wrapper (the command's, or 128+N when signal N killed it), or of ssh (255: ssh failed). */
  code: number | null;
  /** Set when the local wrapper or ssh client itself was killed by a signal. */
  signal: NodeJS.Signals | null;
  /** Whether the command was started (the wrapper's marker was seen) before the exit. */
  started: boolean;
}

export interface RankProcessOptions {
  placement: RankPlacement;
  /** Spawned directly (local) or through ssh (remote). */
  remote: boolean;
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  token: string;
  tagOutput: boolean;
  /** One log file for this rank's stdout and stderr, unprefixed; undefined for none. */
  logFile: string | undefined;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Receives the rank's progress lines (src/progress.ts) instead of stderr; undefined: they are ordinary lines. */
  progress?: (text: string) => void;
}

const KEPT_STDERR_LINES = 5;

export class RankProcess {
  readonly placement: RankPlacement;
  readonly exited: Promise<RankExit>;
  /** Resolves when the command is running on its host, or when the process exits first. */
  readonly started: Promise<void>;
  /** Pid of the command on its host (its process group), once started. */
  commandPid: number | undefined;
  /** The last few stderr lines, for messages about a failure. */
  readonly lastStderr: string[] = [];
  private child: ChildProcess | undefined;
  private exit: RankExit | undefined;
  private isStarted = false;
  private log: WriteStream | undefined;
  private resolveExited!: (e: RankExit) => void;
  private resolveStarted!: () => void;

  constructor(private readonly options: RankProcessOptions) {
    this.placement = options.placement;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.started = new Promise((resolve) => (this.resolveStarted = resolve));
  }

  get rank(): number {
    return this.placement.rank;
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  get hasStarted(): boolean {
    return this.isStarted;
  }

  get exitInfo(): RankExit | undefined {
    return this.exit;
  }

  start(): void {
    const o = this.options;
    if (o.logFile) {
      this.log = createWriteStream(o.logFile, { flags: 'w' });
      this.log.on('error', (e) => o.stderr(`ringtrain: cannot write ${o.logFile}: ${e.message}\n`));
    }
    const prefix = o.tagOutput ? `[${this.rank}] ` : '';
    const out = new OutputPrefixer({
      prefix,
      write: o.stdout,
      filter: (line) => {
        if (!this.isStarted) {
          const pid = parseStartedMarker(line);
          if (pid !== undefined) {
            this.commandPid = pid;
            this.isStarted = true;
            this.resolveStarted();
            return false;
          }
        }
        this.log?.write(`${line}\n`);
        return true;
      },
    });
    const err = new OutputPrefixer({
      prefix,
      write: o.stderr,
      filter: (line) => {
        if (o.progress && line.startsWith(PROGRESS_MARKER)) {
          o.progress(line.slice(PROGRESS_MARKER.length));
          return false;
        }
        this.lastStderr.push(line);
        if (this.lastStderr.length > KEPT_STDERR_LINES) this.lastStderr.shift();
        this.log?.write(`${line}\n`);
        return true;
      },
    });

    // A session of its own: a terminal's Ctrl-C reaches only the launcher, which then stops ranks in order.
    const child = spawn(o.argv[0]!, o.argv.slice(1), { cwd: o.cwd, env: o.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdin!.on('error', () => undefined); // EPIPE when it exits before reading the token
    child.stdin!.write(`${o.token}\n`);
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));

    let exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let streamsOpen = 2;
    const finish = (): void => {
      if (!exitStatus || streamsOpen > 0 || this.exit) return;
      out.end();
      err.end();
      this.exit = { ...exitStatus, started: this.isStarted };
      this.resolveStarted();
      const done = (): void => this.resolveExited(this.exit!);
      if (this.log) this.log.end(done);
      else done();
    };
    child.stdout!.on('close', () => {
      streamsOpen--;
      finish();
    });
    child.stderr!.on('close', () => {
      streamsOpen--;
      finish();
    });
    child.on('error', (e) => {
      // spawn itself failed (e.g. no ssh on this machine): report it as the rank's failure.
      err.push(`ringtrain: cannot start ${o.argv[0]}: ${e.message}\n`);
      exitStatus ??= { code: 127, signal: null };
      streamsOpen = 0;
      finish();
    });
    child.on('exit', (code, signal) => {
      exitStatus = { code, signal };
      // Something the rank left behind may hold the pipes open; do not wait for it forever.
      setTimeout(() => {
        streamsOpen = 0;
        finish();
      }, 2_000).unref();
      finish();
    });
  }

  /** Asks the wrapper to terminate the rank (EOF on its stdin). */
  closeStdin(): void {
    if (this.child?.stdin && !this.child.stdin.destroyed) this.child.stdin.end();
  }

  /** Signals the local process (the ssh client, or the wrapper, whose trap then terminates the rank). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running || this.child?.pid === undefined) return;
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
    if (sig === 'SIGKILL' && !this.options.remote && this.commandPid !== undefined) {
      // The wrapper cannot act on SIGKILL: reach the rank's own process group directly.
      try {
        process.kill(-this.commandPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
