/** The collective benchmark's output: nccl-tests-style tables, CSV (what ../shared/peers reads), JSON. */
import type { Collective, CollectiveName } from './collectives.js';
import { callMode, type BenchOptions, type BenchRow } from './sweep.js';

export interface CollectiveResult {
  collective: Collective;
  rows: BenchRow[];
}

export interface SkippedCollective {
  name: CollectiveName;
  reason: string;
}

export interface BenchContext {
  ranks: number;
  hosts: number;
  options: BenchOptions;
  /** Rank 0's machine: cores and 1-minute load average at the start (other jobs share the CPU). */
  machine: { cores: number; loadAtStart: number };
}

const COLUMNS: [string, number][] = [
  ['size', 12], ['count', 12], ['type', 10], ['redop', 7], ['root', 6], ['time(us)', 12], ['algbw(GB/s)', 13], ['busbw(GB/s)', 13], ['#wrong', 8],
];
/** sendrecv's two more: osu_latency and osu_bw between ranks 0 and 1. */
const PING_PONG_COLUMNS: [string, number][] = [['pingpong(us)', 14], ['osu_bw(GB/s)', 14]];

export function formatRunHeader(ctx: BenchContext): string {
  const o = ctx.options;
  return (
    `# ringtrain-bench: ${ctx.ranks} rank(s) on ${ctx.hosts} host(s), ${o.dtype}, op ${o.op}, ${o.iters} iters` +
    `${o.minTimeMs > 0 ? ` (more, up to ${o.minTimeMs} ms, for small sizes)` : ''}, ${o.warmup} warm-up` +
    `${o.startupWarmupMs > 0 ? ` (+${o.startupWarmupMs} ms at start)` : ''}, check ${o.check ? 'on' : 'off'}\n` +
    `# machine of rank 0: ${ctx.machine.cores} cores, load average ${ctx.machine.loadAtStart.toFixed(2)} at start`
  );
}

export function formatCollectiveHeader(c: Collective, ctx: BenchContext): string {
  const factor = c.sized ? `busbw = algbw x ${c.busbwFormula} = ${c.busbwFactor(ctx.ranks).toFixed(3)}` : 'time only';
  const cols = c.pingPong ? [...COLUMNS, ...PING_PONG_COLUMNS] : COLUMNS;
  const head = cols.map(([name, w], i) => (i === 0 ? `#${name.padStart(w - 1)}` : name.padStart(w))).join('');
  const lines = [`# ${c.name}: size = ${c.sizeMeans}; ${factor}; ${callMode(c, ctx.options)}`];
  if (c.pingPong) lines.push('# pingpong: half a round trip between ranks 0 and 1 (osu_latency); osu_bw: a window of sends from rank 0 to rank 1');
  return [...lines, head].join('\n');
}

const na = (v: number | null, digits: number): string => (v === null ? 'N/A' : v.toFixed(digits));

export function formatRow(r: BenchRow): string {
  const cells = [
    String(r.bytes), String(r.count), r.dtype, r.op, String(r.root), r.timeUs.toFixed(1),
    na(r.algbwGBps, 4), na(r.busbwGBps, 4), r.errors === null ? 'N/A' : String(r.errors),
  ];
  const cols = [...COLUMNS];
  if (r.latencyUs !== null) {
    cells.push(r.latencyUs.toFixed(1), na(r.p2pBwGBps, 4));
    cols.push(...PING_PONG_COLUMNS);
  }
  return cells.map((text, i) => text.padStart(cols[i]![1])).join('');
}

export function totalErrors(rows: readonly BenchRow[]): number {
  return rows.reduce((a, r) => a + (r.errors ?? 0), 0);
}

export function averageBusbw(rows: readonly BenchRow[]): number | null {
  const sized = rows.filter((r) => r.busbwGBps !== null);
  return sized.length ? sized.reduce((a, r) => a + r.busbwGBps!, 0) / sized.length : null;
}

export function formatCollectiveFooter(rows: readonly BenchRow[], check: boolean): string {
  const wrong = totalErrors(rows);
  const avg = averageBusbw(rows);
  if (rows.every((r) => r.busbwGBps === null)) return '# Time only: no data to check';
  const lines = [`# Out of bounds values : ${check ? `${wrong} ${wrong ? 'FAILED' : 'OK'}` : 'N/A (check off)'}`];
  if (avg !== null) lines.push(`# Avg bus bandwidth    : ${avg.toFixed(4)} GB/s`);
  return lines.join('\n');
}

export function formatSkipped(s: SkippedCollective): string {
  return `# ${s.name}: not run: ${s.reason}`;
}

/** The CSV columns. The first eight are those ../shared/peers/compare.py and loopback.py read by name (bytes, time_us, busbw_gbps). */
export const CSV_HEADER = 'bytes,count,dtype,op,time_us,algbw_gbps,busbw_gbps,errors,collective,root,pingpong_us,p2p_bw_gbps';

export function formatCsvRow(r: BenchRow): string {
  const num = (v: number | null, digits: number): string => (v === null ? '' : v.toFixed(digits));
  return [
    r.bytes, r.count, r.dtype, r.op, r.timeUs.toFixed(2), num(r.algbwGBps, 6), num(r.busbwGBps, 6), r.errors ?? '', r.collective, r.root,
    num(r.latencyUs, 2), num(r.p2pBwGBps, 6),
  ].join(',');
}

/** The --json document: one object, printed on one line by rank 0. */
export function benchJson(ctx: BenchContext, results: readonly CollectiveResult[], skipped: readonly SkippedCollective[]): object {
  return {
    tool: 'ringtrain-bench',
    mode: 'collectives',
    ranks: ctx.ranks,
    hosts: ctx.hosts,
    machine: ctx.machine,
    options: ctx.options,
    collectives: results.map(({ collective: c, rows }) => ({
      name: c.name,
      sizeMeans: c.sizeMeans,
      busbwFormula: c.busbwFormula,
      busbwFactor: c.sized ? c.busbwFactor(ctx.ranks) : null,
      calls: callMode(c, ctx.options),
      rows,
      errors: ctx.options.check && c.sized ? totalErrors(rows) : null,
      avgBusbwGBps: averageBusbw(rows),
    })),
    skipped,
  };
}
