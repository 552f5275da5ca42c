/**
 * Reachability findings: a host whose agent could not reach the launcher (its ranks could not join
 * the rendezvous), and every pair whose authenticated probe failed, by port and in the kernel's
 * words: no answer is a firewall that drops, a refusal one that rejects (or nothing listening).
 */
import type { Finding, HostReport, ProbeResult } from '../report.js';

function what(p: ProbeResult): string {
  switch (p.failure) {
    case 'timeout':
      return `${p.error ?? 'no answer'}: dropped, by a firewall on ${p.to} or between`;
    case 'refused':
      return `refused: a firewall on ${p.to} rejects it, or nothing listens there`;
    case 'unreachable':
      return `no route to ${p.address} (${p.error ?? 'unreachable'})`;
    case 'auth':
      return `answered, but not by this check: ${p.error ?? 'wrong token'}`;
    default:
      return p.error ?? 'failed';
  }
}

export function describeProbe(p: ProbeResult): string {
  return what(p);
}

export function reachabilityFindings(hosts: readonly HostReport[], probes: readonly ProbeResult[]): Finding[] {
  const findings: Finding[] = [];
  for (const h of hosts) {
    if (h.control && !h.control.ok) {
      findings.push({
        severity: 'error',
        check: 'reachability',
        host: h.host,
        pair: { from: h.host, to: 'launcher' },
        message: `${h.host} cannot reach the launcher at ${h.control.address}: ${h.control.error ?? 'failed'}; its ranks could not join the rendezvous`,
        fix: 'open --port-range on this machine\'s firewall for the hosts, or pass --network-interface',
      });
    }
  }
  const byPair = new Map<string, ProbeResult[]>();
  for (const p of probes) {
    if (p.ok) continue;
    const key = `${p.from}\u0000${p.to}`;
    byPair.set(key, [...(byPair.get(key) ?? []), p]);
  }
  for (const failed of byPair.values()) {
    const p = failed[0]!;
    const ports = failed.map((f) => f.port);
    findings.push({
      severity: 'error',
      check: 'reachability',
      host: p.to,
      pair: { from: p.from, to: p.to, port: p.port },
      message: `${p.from} -> ${p.to} (${p.address}) port${ports.length > 1 ? 's' : ''} ${ports.join(', ')}: ${what(p)}`,
      fix: `allow TCP ${ports.length > 1 ? 'ports' : 'port'} of --port-range from ${p.from} on ${p.to} (nft/iptables, cloud security group)`,
    });
  }
  // A host no other host reaches is the one to look at, whatever the pairs say.
  const probed = new Set(probes.map((p) => p.to));
  for (const to of probed) {
    const toIt = probes.filter((p) => p.to === to);
    const from = new Set(toIt.map((p) => p.from));
    if (from.size >= 2 && toIt.every((p) => !p.ok)) {
      findings.push({
        severity: 'error',
        check: 'reachability',
        host: to,
        message: `no host can reach ${to} on any probed port of the range: look at ${to}'s firewall first`,
      });
    }
  }
  return findings;
}
