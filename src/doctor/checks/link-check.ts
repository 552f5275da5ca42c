/**
 * Link findings: every host's links to its ring neighbours were measured both ways; one below SLOW_FRACTION of the median
 * bandwidth (or far above the median latency) drags the whole ring, and is named, together with the
 * host it points at when every link out of (or into) one host is slow.
 */
import type { Finding, LinkResult } from '../report.js';

/** A link slower than this fraction of the median is flagged. */
export const SLOW_FRACTION = 0.7;
/** Round trips above this many times the median (and above LATENCY_FLOOR_MS) are flagged. */
export const LATENCY_FACTOR = 4;
export const LATENCY_FLOOR_MS = 1;

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The directed links the test measures, in rounds: every host to its ring neighbours both ways (so a
 * slow link can be pinned on the host whose links are all slow), and no host in two links of one
 * round, so that a link is measured alone: no host's uplink carries a second flow, nor the ACKs of
 * one it receives behind the data of one it sends.
 */
export function linkRounds(n: number): [number, number][][] {
  if (n < 2) return [];
  const links: [number, number][] = [];
  const seen = new Set<string>();
  const add = (from: number, to: number): void => {
    if (from === to || seen.has(`${from}>${to}`)) return;
    seen.add(`${from}>${to}`);
    links.push([from, to]);
  };
  for (let i = 0; i < n; i++) add(i, (i + 1) % n);
  for (let i = 0; i < n; i++) add(i, (i + n - 1) % n);
  const rounds: { links: [number, number][]; busy: Set<number> }[] = [];
  for (const [from, to] of links) {
    let round = rounds.find((r) => !r.busy.has(from) && !r.busy.has(to));
    if (!round) {
      round = { links: [], busy: new Set() };
      rounds.push(round);
    }
    round.links.push([from, to]);
    round.busy.add(from).add(to);
  }
  return rounds.map((r) => r.links);
}

export function formatRate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond)) return '-';
  if (bytesPerSecond >= 1e9) return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
  if (bytesPerSecond >= 1e6) return `${(bytesPerSecond / 1e6).toFixed(bytesPerSecond >= 1e8 ? 0 : 1)} MB/s`;
  return `${(bytesPerSecond / 1e3).toFixed(0)} kB/s`;
}

export function isSlow(link: LinkResult, medianRate: number): boolean {
  return link.ok && link.bytesPerSecond !== undefined && link.bytesPerSecond < SLOW_FRACTION * medianRate;
}

export function linkFindings(links: readonly LinkResult[]): Finding[] {
  const findings: Finding[] = [];
  const measured = links.filter((l) => l.ok && l.bytesPerSecond !== undefined);
  const rate = median(measured.map((l) => l.bytesPerSecond!));
  const rtt = median(measured.filter((l) => l.rttMs !== undefined).map((l) => l.rttMs!));
  for (const l of links) {
    if (!l.ok) {
      findings.push({ severity: 'error', check: 'links', host: l.to, pair: { from: l.from, to: l.to, port: l.port }, message: `link ${l.from} -> ${l.to}: the test failed: ${l.error ?? 'unknown error'}` });
      continue;
    }
    if (measured.length >= 2 && isSlow(l, rate)) {
      const pct = Math.round((100 * l.bytesPerSecond!) / rate);
      findings.push({
        severity: 'warn',
        check: 'links',
        host: l.from,
        pair: { from: l.from, to: l.to, port: l.port },
        message: `link ${l.from} -> ${l.to}: ${formatRate(l.bytesPerSecond)}, ${pct}% of the median ${formatRate(rate)}: the whole ring would run at its speed`,
        fix: 'check that link: NIC speed and duplex (ethtool), traffic shaping, a congested switch port',
      });
    }
    if (measured.length >= 2 && l.rttMs !== undefined && l.rttMs > LATENCY_FACTOR * rtt && l.rttMs > LATENCY_FLOOR_MS) {
      findings.push({
        severity: 'warn',
        check: 'links',
        host: l.from,
        pair: { from: l.from, to: l.to, port: l.port },
        message: `link ${l.from} -> ${l.to}: round trip ${l.rttMs.toFixed(2)} ms, ${(l.rttMs / rtt).toFixed(0)}x the median ${rtt.toFixed(2)} ms`,
      });
    }
  }
  if (measured.length >= 3) {
    const hosts = new Set(measured.flatMap((l) => [l.from, l.to]));
    for (const h of hosts) {
      const out = measured.filter((l) => l.from === h);
      const inn = measured.filter((l) => l.to === h);
      const slowOut = out.length > 0 && out.every((l) => isSlow(l, rate));
      const slowIn = inn.length > 0 && inn.every((l) => isSlow(l, rate));
      if (slowOut || slowIn) {
        const dir = slowOut && slowIn ? 'to and from' : slowOut ? 'from' : 'to';
        findings.push({ severity: 'warn', check: 'links', host: h, message: `every link ${dir} ${h} is slow: look at ${h}'s network interface first` });
      }
    }
  }
  return findings;
}
