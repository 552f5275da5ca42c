/** All the checks' findings, and what they add up to: the verdict and the exit code. */
import { addressFindings } from './checks/address-check.js';
import { linkFindings } from './checks/link-check.js';
import { loginFindings } from './checks/login-check.js';
import { reachabilityFindings } from './checks/reachability-check.js';
import { slotFindings } from './checks/slot-check.js';
import type { DoctorReport, Finding } from './report.js';

type Facts = Pick<DoctorReport, 'hosts' | 'probes' | 'links' | 'networkInterface'>;

const ORDER: Record<Finding['severity'], number> = { error: 0, warn: 1, note: 2 };

export function allFindings(facts: Facts): Finding[] {
  const found = [
    ...loginFindings(facts.hosts),
    ...addressFindings(facts.hosts, facts.networkInterface ?? undefined),
    ...reachabilityFindings(facts.hosts, facts.probes),
    ...linkFindings(facts.links),
    ...slotFindings(facts.hosts),
  ];
  // Stable: errors first, each check's own order kept.
  return found.map((f, i) => ({ f, i })).sort((a, b) => ORDER[a.f.severity] - ORDER[b.f.severity] || a.i - b.i).map(({ f }) => f);
}

/** error: the job would fail; warn: it would run slowly (or may fail); notes alone pass. */
export function verdictOf(findings: readonly Finding[]): { verdict: DoctorReport['verdict']; exitCode: 0 | 1 } {
  if (findings.some((f) => f.severity === 'error')) return { verdict: 'fail', exitCode: 1 };
  if (findings.some((f) => f.severity === 'warn')) return { verdict: 'warn', exitCode: 1 };
  return { verdict: 'pass', exitCode: 0 };
}
