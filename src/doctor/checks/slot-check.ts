/** Slot findings: more ranks on a host than it has CPUs (or GPUs, for a CUDA build that sees some). */
import type { Finding, HostReport } from '../report.js';

export function slotFindings(hosts: readonly HostReport[]): Finding[] {
  const findings: Finding[] = [];
  for (const h of hosts) {
    const info = h.info;
    if (!info || h.ranks === 0) continue;
    if (h.ranks > info.cpus) {
      findings.push({
        severity: 'warn',
        check: 'slots',
        host: h.host,
        message: `${h.host}: ${h.ranks} ranks on ${info.cpus} CPU(s): oversubscribed, every rank would wait for the slowest`,
        fix: `give ${h.host} at most ${info.cpus} slots`,
      });
    }
    const gpus = info.gpus?.length ?? 0;
    if (info.addon.cuda && gpus > 0 && h.ranks > gpus) {
      findings.push({
        severity: 'warn',
        check: 'slots',
        host: h.host,
        message: `${h.host}: ${h.ranks} ranks share ${gpus} GPU(s)`,
        fix: `give ${h.host} ${gpus} slot(s), one per GPU`,
      });
    }
  }
  return findings;
}
