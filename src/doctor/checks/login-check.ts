/**
 * Login findings: hosts the check could not run on (ssh, working directory, node, ringtrain, hang),
 * addons that do not load, and versions that differ between hosts: every host must run the same
 * ringtrain, on a Node.js the package supports.
 */
import type { Finding, HostReport } from '../report.js';

/** The oldest Node.js major the package supports (package.json engines: ">=20"). */
export const MIN_NODE_MAJOR = 20;

function nodeMajor(version: string): number {
  const m = /^v?(\d+)\./.exec(version);
  return m ? Number(m[1]) : NaN;
}

/** The value most hosts have (first named wins a tie), and the hosts that differ from it. */
export function oddOnesOut<T>(hosts: readonly HostReport[], value: (h: HostReport) => T | undefined): { common: T; odd: HostReport[] } | undefined {
  const counts = new Map<T, number>();
  for (const h of hosts) {
    const v = value(h);
    if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  if (counts.size < 2) return undefined;
  let common: T | undefined;
  let best = 0;
  for (const [v, n] of counts) {
    if (n > best) {
      best = n;
      common = v;
    }
  }
  return { common: common!, odd: hosts.filter((h) => value(h) !== undefined && value(h) !== common) };
}

export function loginFindings(hosts: readonly HostReport[]): Finding[] {
  const findings: Finding[] = [];
  for (const h of hosts) {
    if (!h.login.ok) {
      findings.push({
        severity: 'error',
        check: 'login',
        host: h.host,
        message: `${h.host}: ${h.login.error ?? 'the check did not run'}`,
        ...(h.login.hung ? { fix: `log in to ${h.host} and run the command that ringtrain doctor -v prints for it` } : {}),
      });
      continue;
    }
    const info = h.info!;
    if (!info.addon.ok) {
      findings.push({ severity: 'error', check: 'login', host: h.host, message: `${h.host}: the ringtrain addon does not load: ${info.addon.error}`, fix: 'rebuild it there (npm rebuild ringtrain) or install a matching prebuild' });
    }
    const major = nodeMajor(info.node);
    if (!(major >= MIN_NODE_MAJOR)) {
      findings.push({ severity: 'error', check: 'login', host: h.host, message: `${h.host}: Node.js ${info.node} is older than ringtrain supports (>= ${MIN_NODE_MAJOR})`, fix: `install Node.js ${MIN_NODE_MAJOR} or newer there` });
    }
  }
  const ran = hosts.filter((h) => h.login.ok && h.info);
  const versions = oddOnesOut(ran, (h) => h.info!.ringtrain);
  if (versions) {
    for (const h of versions.odd) {
      findings.push({
        severity: 'error',
        check: 'login',
        host: h.host,
        message: `${h.host} runs ringtrain ${h.info!.ringtrain}, the other hosts ${versions.common}: ranks of different versions cannot form a ring`,
        fix: `install ringtrain ${versions.common} on ${h.host}`,
      });
    }
  }
  const majors = oddOnesOut(ran, (h) => nodeMajor(h.info!.node));
  if (majors) {
    for (const h of majors.odd) {
      findings.push({ severity: 'note', check: 'login', host: h.host, message: `${h.host} runs Node.js ${h.info!.node}, most hosts Node.js ${majors.common}.x` });
    }
  }
  const builds = oddOnesOut(ran.filter((h) => h.info!.addon.ok), (h) => (h.info!.addon.cuda ? 'CUDA' : 'CPU'));
  if (builds) {
    for (const h of builds.odd) {
      findings.push({ severity: 'warn', check: 'login', host: h.host, message: `${h.host}'s addon is a ${h.info!.addon.cuda ? 'CUDA' : 'CPU-only'} build, most hosts' a ${builds.common === 'CUDA' ? 'CUDA' : 'CPU-only'} build` });
    }
  }
  return findings;
}
