/** The training benchmark's report: a table per repeat and the scaling efficiency, or one JSON document. */
import type { TrainBenchOptions } from './train-options.js';
import type { StepSplit, efficiencyFactors } from './train-stats.js';

export interface RankThroughput extends StepSplit {
  rank: number;
  samplesPerSec: number;
  /** Wall time of the timed steps / steps (includes what tfjs does between steps). */
  msPerStep: number;
  /** The process's CPU time (all its threads) / wall time during the timed steps: cores it kept busy. */
  cpuCores: number;
}

export interface PhaseResult {
  ranks: number;
  /** ranks * batch * steps / the slowest rank's wall time. */
  totalSamplesPerSec: number;
  perRank: RankThroughput[];
  params: number;
  /** Gradient bytes all-reduced per step (on the wire: 4 an element, 2 with fp16). */
  bytesPerStep: number;
}

export interface TrainRepeat {
  alone: PhaseResult;
  /** null on a 1-rank job. */
  together: PhaseResult | null;
  efficiency: number | null;
  /** The efficiency's two factors (train-stats.ts efficiencyFactors); null on a 1-rank job. */
  factors: ReturnType<typeof efficiencyFactors> | null;
}

export interface TrainReport {
  /** This machine's cores and 1-minute load average when the run started and ended (other jobs share the CPU). */
  machine: { cores: number; loadAtStart: number; loadAtEnd: number };
  ranks: number;
  hosts: number;
  model: string;
  options: TrainBenchOptions;
  backend: { name: string; package: string; label: string; version: string };
  repeats: TrainRepeat[];
  /** Median over repeats. */
  efficiency: number | null;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

const COLUMNS: [string, number][] = [
  ['phase', 12], ['rank', 6], ['samples/s', 11], ['ms/step', 9], ['compute', 9], ['copy', 7], ['transfer', 10], ['wait', 7], ['cpu', 7],
];

function header(): string {
  return COLUMNS.map(([name, w], i) => (i === 0 ? `#${name.padEnd(w - 1)}` : name.padStart(w))).join('') + '   (ms per step: compute + copy + transfer + wait; cpu: cores busy)';
}

function row(cells: string[]): string {
  return cells.map((text, i) => (i === 0 ? text.padEnd(COLUMNS[0]![1]) : text.padStart(COLUMNS[i]![1]))).join('');
}

function phaseRows(p: PhaseResult): string[] {
  const name = p.ranks === 1 ? ' 1 process' : ` ${p.ranks} ranks`;
  const lines = p.perRank.map((r) =>
    row([name, String(r.rank), r.samplesPerSec.toFixed(1), r.msPerStep.toFixed(2), r.computeMs.toFixed(2), r.copyMs.toFixed(2), r.transferMs.toFixed(2), r.waitMs.toFixed(2), r.cpuCores.toFixed(2)]),
  );
  if (p.ranks > 1) lines.push(row([name, 'total', p.totalSamplesPerSec.toFixed(1), '', '', '', '', '', '']));
  return lines;
}

export function formatTrainReport(t: TrainReport): string {
  const o = t.options;
  const first = t.repeats[0]!.alone;
  const lines = [
    `# ringtrain-bench --train: ${t.ranks} rank(s) on ${t.hosts} host(s); ${t.model} (${first.params.toLocaleString('en-US')} parameters, ` +
      `${(first.bytesPerStep / 1024).toFixed(1)} KiB of gradients a step${o.compression === 'fp16' ? ', fp16' : ''}); batch ${o.batch} per rank; ` +
      `${o.warmupSteps} warm-up + ${o.steps} timed steps a phase`,
    `# backend: ${t.backend.name} from ${t.backend.package} ${t.backend.version} (${t.backend.label})`,
    `# machine: ${t.machine.cores} cores, load average ${t.machine.loadAtStart.toFixed(2)} at start, ${t.machine.loadAtEnd.toFixed(2)} at end`,
  ];
  t.repeats.forEach((r, k) => {
    lines.push('#');
    if (t.repeats.length > 1) lines.push(`# repeat ${k + 1}/${t.repeats.length}`);
    lines.push(header(), ...phaseRows(r.alone));
    if (r.together) {
      lines.push(...phaseRows(r.together));
      lines.push(
        `# scaling efficiency: ${r.together.totalSamplesPerSec.toFixed(1)} / (${t.ranks} x ${r.alone.totalSamplesPerSec.toFixed(1)}) = ${pct(r.efficiency!)}`,
      );
      const f = r.factors;
      if (f) {
        lines.push(
          `#   = CPU share ${pct(f.cpuShare)} (the ranks kept ${f.coresTogether.toFixed(2)} cores busy, the one process ${f.coresAlone.toFixed(2)})` +
            ` x CPU efficiency ${pct(f.cpuEfficiency)} (CPU per sample: ${f.cpuMsPerSampleAlone.toFixed(3)} ms alone, ${f.cpuMsPerSampleTogether.toFixed(3)} ms on ${t.ranks} ranks)`,
        );
      }
    }
  });
  if (t.efficiency !== null && t.repeats.length > 1) {
    lines.push(`# scaling efficiency over ${t.repeats.length} repeats: ${t.repeats.map((r) => pct(r.efficiency!)).join(', ')} (median ${pct(t.efficiency)})`);
  }
  if (t.ranks === 1) lines.push('# one rank: no scaling efficiency (start it with ringtrain -np N ... bench --train)');
  return lines.join('\n');
}

export function trainJson(t: TrainReport): object {
  return { tool: 'ringtrain-bench', mode: 'train', ...t };
}
