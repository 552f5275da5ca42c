/**
 * The human form of a DoctorReport: a row per host, a row per problem link, the findings with what
 * to do, and the verdict. Colour only when asked (a terminal without NO_COLOR).
 */
import { formatRate, isSlow, median } from './checks/link-check.js';
import { describeProbe } from './checks/reachability-check.js';
import type { DoctorReport, Finding, HostReport, ProbeResult, Severity } from './report.js';

const COLOURS = { ok: '\x1b[32m', error: '\x1b[31m', warn: '\x1b[33m', note: '\x1b[36m', reset: '\x1b[0m' };
type Status = 'ok' | Severity | 'skip';
const STATUS_WORD: Record<Status, string> = { ok: 'ok', error: 'FAIL', warn: 'WARN', note: 'ok', skip: '-' };

interface Cell {
  text: string;
  status?: Status;
}

function worst(findings: readonly Finding[]): Status {
  if (findings.some((f) => f.severity === 'error')) return 'error';
  if (findings.some((f) => f.severity === 'warn')) return 'warn';
  return 'ok';
}

function renderTable(header: readonly string[], rows: readonly Cell[][], colour: boolean): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.text.length)));
  const paint = (cell: Cell, width: number, last: boolean): string => {
    const text = last ? cell.text : cell.text.padEnd(width);
    const s = cell.status;
    if (!colour || s === undefined || s === 'skip') return text;
    const code = s === 'note' ? COLOURS.ok : COLOURS[s];
    return `${code}${text}${COLOURS.reset}`;
  };
  const line = (cells: readonly Cell[]): string => cells.map((c, i) => paint(c, widths[i]!, i === cells.length - 1)).join('  ').trimEnd();
  return [line(header.map((text) => ({ text }))), ...rows.map(line)];
}

function hostFindings(report: DoctorReport, h: HostReport, check?: Finding['check']): Finding[] {
  return report.findings.filter((f) => f.host === h.host && (check === undefined || f.check === check));
}

function loginCell(h: HostReport, findings: Finding[]): Cell {
  if (!h.login.ok) return { text: h.login.hung ? 'HUNG' : 'FAIL', status: 'error' };
  return { text: `ok ${h.login.seconds.toFixed(1)}s`, status: worst(findings) };
}

function addonCell(h: HostReport): Cell {
  const a = h.info?.addon;
  if (!a) return { text: '-', status: 'skip' };
  if (!a.ok) return { text: 'FAIL', status: 'error' };
  const gpus = h.info!.gpus ? `, ${h.info!.gpus.length} GPU` : '';
  return { text: `${a.prebuilt ? 'prebuilt' : 'built'} ${a.cuda ? 'CUDA' : 'CPU'}${gpus}`, status: 'ok' };
}

function addressCell(h: HostReport, findings: Finding[]): Cell {
  const a = h.address;
  if (!a) return { text: '-', status: 'skip' };
  if (a.error) return { text: 'FAIL', status: 'error' };
  return { text: `${a.interface ?? '?'} ${a.address}`, status: worst(findings) };
}

function reachCell(report: DoctorReport, h: HostReport): Cell {
  if (!h.control) return { text: '-', status: 'skip' };
  if (!h.control.ok) return { text: 'FAIL (launcher)', status: 'error' };
  const toIt = report.probes.filter((p) => p.to === h.host);
  const fromIt = report.probes.filter((p) => p.from === h.host);
  if (toIt.length === 0 && fromIt.length === 0) return { text: 'ok', status: 'ok' };
  const okIn = toIt.filter((p) => p.ok).length;
  const okOut = fromIt.filter((p) => p.ok).length;
  // Failed probes count against the host they could not reach; its own failed probes are the others'.
  const bad = okIn < toIt.length;
  return { text: `${bad ? 'FAIL' : 'ok'} in ${okIn}/${toIt.length} out ${okOut}/${fromIt.length}`, status: bad ? 'error' : 'ok' };
}

function linkCell(report: DoctorReport, h: HostReport, rate: number): Cell {
  const out = report.links.filter((l) => l.from === h.host);
  if (out.length === 0) return { text: '-', status: 'skip' };
  if (out.some((l) => !l.ok)) return { text: 'FAIL', status: 'error' };
  const slowest = out.reduce((a, b) => (b.bytesPerSecond! < a.bytesPerSecond! ? b : a));
  const rtt = Math.max(...out.map((l) => l.rttMs ?? 0));
  const slow = out.some((l) => isSlow(l, rate));
  return { text: `${slow ? 'SLOW ' : ''}${formatRate(slowest.bytesPerSecond)} ${rtt.toFixed(2)}ms`, status: slow ? 'warn' : 'ok' };
}

function slotsCell(h: HostReport, findings: Finding[]): Cell {
  if (!h.info) return { text: '-', status: 'skip' };
  const gpus = h.info.addon.cuda && h.info.gpus ? ` ${h.info.gpus.length} GPU` : '';
  return { text: `${h.ranks}/${h.info.cpus} CPU${gpus}`, status: worst(findings) };
}

export function renderReport(report: DoctorReport, colour = false): string {
  const lines: string[] = [];
  const range = report.portRange ? `${report.portRange[0]}-${report.portRange[1]}` : 'any';
  const iface = report.networkInterface ?? 'default (the route to the launcher)';
  lines.push(`ringtrain doctor${report.mode === 'preflight' ? ' (preflight)' : ''}: ${report.hosts.length} host(s) from ${report.hostsWhat}, port range ${range}, interface ${iface}`);
  lines.push('');
  const rate = median(report.links.filter((l) => l.ok && l.bytesPerSecond !== undefined).map((l) => l.bytesPerSecond!));
  const header = ['HOST', 'LOGIN', 'NODE', 'RINGTRAIN', 'ADDON', 'ADDRESS', 'REACH', ...(report.mode === 'doctor' ? ['LINK OUT', 'SLOTS'] : []), 'STATUS'];
  const rows = report.hosts.map((h): Cell[] => {
    const mine = hostFindings(report, h);
    const status = worst(mine);
    return [
      { text: h.host },
      loginCell(h, hostFindings(report, h, 'login')),
      { text: h.info?.node ?? '-', status: h.info ? 'ok' : 'skip' },
      { text: h.info?.ringtrain ?? '-', status: h.info ? worst(hostFindings(report, h, 'login')) : 'skip' },
      addonCell(h),
      addressCell(h, hostFindings(report, h, 'addresses')),
      reachCell(report, h),
      ...(report.mode === 'doctor' ? [linkCell(report, h, rate), slotsCell(h, hostFindings(report, h, 'slots'))] : []),
      { text: STATUS_WORD[status], status },
    ];
  });
  lines.push(...renderTable(header, rows, colour));

  const problemRows: Cell[][] = [];
  // One row per link (pair) and kind of failure, its ports together.
  const failed = new Map<string, ProbeResult[]>();
  for (const p of report.probes) {
    if (p.ok) continue;
    const key = `${p.from}|${p.to}|${describeProbe(p)}`;
    failed.set(key, [...(failed.get(key) ?? []), p]);
  }
  for (const group of failed.values()) {
    const p = group[0]!;
    problemRows.push([{ text: p.from }, { text: p.to }, { text: group.map((g) => g.port).join(',') }, { text: 'FAIL', status: 'error' }, { text: describeProbe(p) }]);
  }
  for (const h of report.hosts) {
    if (h.control && !h.control.ok) {
      problemRows.push([{ text: h.host }, { text: 'launcher' }, { text: h.control.address.replace(/^.*:/, '') }, { text: 'FAIL', status: 'error' }, { text: h.control.error ?? 'failed' }]);
    }
  }
  for (const l of report.links) {
    if (!l.ok) problemRows.push([{ text: l.from }, { text: l.to }, { text: String(l.port) }, { text: 'FAIL', status: 'error' }, { text: l.error ?? 'failed' }]);
    else if (isSlow(l, rate)) {
      const pct = Math.round((100 * l.bytesPerSecond!) / rate);
      problemRows.push([{ text: l.from }, { text: l.to }, { text: String(l.port) }, { text: 'SLOW', status: 'warn' }, { text: `${formatRate(l.bytesPerSecond)}, ${pct}% of the median ${formatRate(rate)}` }]);
    }
  }
  if (problemRows.length > 0) {
    lines.push('');
    lines.push(...renderTable(['FROM', 'TO', 'PORT', 'LINK', 'PROBLEM'], problemRows, colour));
  }

  if (report.findings.length > 0) {
    lines.push('');
    for (const f of report.findings) {
      const word = f.severity === 'error' ? 'error' : f.severity === 'warn' ? 'warning' : 'note';
      const tag = colour ? `${COLOURS[f.severity]}${word}${COLOURS.reset}` : word;
      lines.push(`${tag} [${f.check}] ${f.message}`);
      if (f.fix) lines.push(`    fix: ${f.fix}`);
    }
  }
  lines.push('');
  lines.push(verdictLine(report, colour));
  return `${lines.join('\n')}\n`;
}

export function verdictLine(report: DoctorReport, colour = false): string {
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.filter((f) => f.severity === 'warn').length;
  const took = `${report.seconds.toFixed(1)}s`;
  const word = report.verdict === 'pass' ? 'PASS' : report.verdict === 'warn' ? 'WARN' : 'FAIL';
  const paint = (s: string): string => (colour ? `${report.verdict === 'pass' ? COLOURS.ok : report.verdict === 'warn' ? COLOURS.warn : COLOURS.error}${s}${COLOURS.reset}` : s);
  if (report.verdict === 'pass') return `${paint(word)}: ${report.hosts.length} host(s) ready for the job (${took})`;
  const parts = [errors > 0 ? `${errors} error(s): the job would fail` : '', warnings > 0 ? `${warnings} warning(s): the job would run slowly or may fail` : ''].filter(Boolean);
  return `${paint(word)}: ${parts.join('; ')} (${took})`;
}
