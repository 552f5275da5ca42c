/**
 * Chrome-trace timeline (opens in Perfetto or chrome://tracing): each rank is a process row, each
 * collective a slice with its phases (queue, wait for peers, reduce-scatter, all-gather) as
 * children. Off unless RINGTRAIN_TIMELINE names a file; when off, nothing is recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NativeTiming } from './native.js';
import type { Dtype, ReduceOp } from './types.js';

interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, string | number>;
}

/** Microseconds on the same monotonic clock the native worker uses. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The file rank `rank` writes when the job's timeline is `file`: FILE.rank<r>.json beside it. */
export function rankTimelinePath(file: string, rank: number): string {
  const ext = path.extname(file);
  const base = ext === '.json' ? file.slice(0, -ext.length) : file;
  return `${base}.rank${rank}.json`;
}

export class Timeline {
  private readonly events: TraceEvent[] = [];
  private flushed = false;

  private constructor(
    readonly file: string,
    private readonly rank: number,
  ) {
    this.events.push({ name: 'process_name', cat: '__metadata', ph: 'M', ts: 0, pid: rank, tid: 0, args: { name: `rank ${rank}` } });
    process.once('exit', () => this.flush());
  }

  static fromEnv(env: NodeJS.ProcessEnv, rank: number): Timeline | undefined {
    const file = env.RINGTRAIN_TIMELINE;
    if (!file) return undefined;
    // A process that calls init() again keeps recording into the same trace.
    const target = rankTimelinePath(file, rank);
    if (active?.file !== target) active = new Timeline(target, rank);
    return active;
  }

  /** A span of the caller's own (e.g. the tfjs hook's gradient download), on thread row 1. */
  span(name: string, startUs: number, endUs: number, args?: Record<string, string | number>): void {
    this.events.push({ name, cat: 'ringtrain', ph: 'X', ts: startUs, dur: Math.max(0, endUs - startUs), pid: this.rank, tid: 1, args });
  }

  record(e: { kind: string; dtype: Dtype; bytes: number; op?: ReduceOp; timing: NativeTiming; communicator?: number }): void {
    const t = e.timing;
    // The name is the kind alone, so Perfetto groups and aggregates slices by it; which call it
    // was (the same number on every rank) is in args.
    const name = e.kind;
    const args: Record<string, string | number> = { seq: t.seq, bytes: e.bytes, dtype: e.dtype };
    // Which of this process's init()s made the communicator (0 for the first): seq counts per communicator.
    if (e.communicator !== undefined) args.communicator = e.communicator;
    if (e.op) args.op = e.op;
    const ev = (n: string, from: number, to: number): void => {
      if (from > 0 && to >= from) this.events.push({ name: n, cat: 'ringtrain', ph: 'X', ts: from, dur: to - from, pid: this.rank, tid: 0, args });
    };
    ev(name, t.submittedUs, t.endUs);
    ev('queue', t.submittedUs, t.startUs);
    if (t.headerUs > 0) {
      ev('wait for peers', t.startUs, t.headerUs);
      if (e.kind === 'allreduce' && t.reduceScatterUs > 0) {
        ev('reduce-scatter', t.headerUs, t.reduceScatterUs);
        ev('all-gather', t.reduceScatterUs, t.endUs);
      } else {
        ev('transfer', t.headerUs, t.endUs);
      }
    }
  }

  flush(): void {
    if (this.flushed) return;
    this.flushed = true;
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    fs.writeFileSync(this.file, JSON.stringify({ traceEvents: this.events, displayTimeUnit: 'ms' }));
  }
}

let active: Timeline | undefined;

/** True when this process records a timeline (so callers can skip measuring when it does not). */
export function timelineEnabled(): boolean {
  return active !== undefined;
}

/**
 * Records a span of the caller's own work (e.g. the tfjs hook's gradient download) on this rank's
 * timeline, when one is being recorded; otherwise does nothing. Times from monotonicMicros().
 */
export function traceSpan(name: string, startUs: number, endUs: number, args?: Record<string, string | number>): void {
  active?.span(name, startUs, endUs, args);
}

/**
 * Merges per-rank timeline files into one trace (the launcher does this for --timeline). With
 * `removeParts`, the per-rank files are deleted once the merged trace is written.
 */
export function mergeTimelines(files: readonly string[], out: string, options: { removeParts?: boolean } = {}): void {
  const all: TraceEvent[] = [];
  const read: string[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    const parsed = JSON.parse(fs.readFileSync(f, 'utf8')) as { traceEvents?: TraceEvent[] };
    all.push(...(parsed.traceEvents ?? []));
    read.push(f);
  }
  fs.writeFileSync(out, JSON.stringify({ traceEvents: all, displayTimeUnit: 'ms' }));
  if (options.removeParts) for (const f of read) if (path.resolve(f) !== path.resolve(out)) fs.rmSync(f, { force: true });
}
