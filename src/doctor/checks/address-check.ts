/**
 * Address findings: the address each host's ranks would bind and advertise, whether the other hosts
 * can use it (loopback and container bridges they cannot), whether the interface is named the same
 * everywhere, and whether two names of the host list are one machine.
 */
import net from 'node:net';
import type { Finding, HostReport } from '../report.js';
import { oddOnesOut } from './login-check.js';

/** Bridges that container and VM runtimes create: their addresses are private to one machine. */
const BRIDGE_INTERFACE = /^(docker\d*|br-[0-9a-f]{6,}|virbr\d+|cni\d*|podman\d*|lxcbr\d+|lxdbr\d+|cali[0-9a-f]+|flannel\.\d+|veth[0-9a-f]+)$/;

export function isLoopbackAddress(address: string): boolean {
  if (net.isIPv4(address)) return address.startsWith('127.');
  const a = address.toLowerCase();
  return a === '::1' || a.startsWith('::ffff:127.');
}

/** Why an address other machines cannot reach was chosen, or undefined when it looks reachable. */
export function unreachableKind(iface: string | undefined, address: string): 'loopback' | 'container bridge' | undefined {
  if (isLoopbackAddress(address)) return 'loopback';
  if (iface !== undefined && BRIDGE_INTERFACE.test(iface)) return 'container bridge';
  // Docker's default bridge network, whatever the interface is called inside a container.
  if (/^172\.17\./.test(address)) return 'container bridge';
  return undefined;
}

export function addressFindings(hosts: readonly HostReport[], networkInterface: string | undefined): Finding[] {
  const findings: Finding[] = [];
  const withAddress = hosts.filter((h) => h.address?.address !== undefined);
  // Loopback only works when every rank is on one machine.
  const multi = new Set(hosts.map((h) => h.info?.identity ?? h.host)).size > 1;
  for (const h of hosts) {
    const a = h.address;
    if (!a) continue;
    if (a.error !== undefined) {
      findings.push({
        severity: 'error',
        check: 'addresses',
        host: h.host,
        message: `${h.host}: ${a.error}`,
        ...(networkInterface !== undefined ? { fix: `pass a --network-interface that every host has` } : {}),
      });
      continue;
    }
    const kind = a.address === undefined ? undefined : unreachableKind(a.interface, a.address);
    if (kind !== undefined && multi) {
      findings.push({
        severity: kind === 'loopback' ? 'error' : 'warn',
        check: 'addresses',
        host: h.host,
        message: `${h.host}'s ranks would advertise ${a.address} (${a.interface ?? '?'}), a ${kind} address the other hosts cannot reach`,
        fix: 'pass --network-interface with the interface of the network between the hosts',
      });
    }
  }
  if (networkInterface === undefined) {
    const names = oddOnesOut(withAddress, (h) => h.address!.interface);
    if (names) {
      const odd = names.odd.map((h) => `${h.host} (${h.address!.interface})`).join(', ');
      findings.push({
        severity: 'note',
        check: 'addresses',
        message: `the ranks would use interface ${names.common} on most hosts but another on ${odd}: --network-interface needs one name that every host has`,
      });
    }
  }
  const byMachine = new Map<string, HostReport[]>();
  for (const h of hosts) {
    const id = h.info?.identity;
    if (id === undefined || id.startsWith('hostname:')) continue;
    byMachine.set(id, [...(byMachine.get(id) ?? []), h]);
  }
  for (const same of byMachine.values()) {
    if (same.length < 2) continue;
    const names = same.map((h) => `${h.host} (${h.origin})`).join(' and ');
    findings.push({
      severity: 'error',
      check: 'addresses',
      host: same[1]!.host,
      message: `${names} are one machine (same boot, IPC and network namespace): the rendezvous would refuse the job, both names' ranks counting local ranks from 0`,
      fix: 'name each machine once in the host list (with all its slots)',
    });
  }
  for (const h of hosts) {
    if (h.names.length > 1) {
      findings.push({ severity: 'note', check: 'addresses', host: h.host, message: `${h.names.join(', ')} are one machine: the launcher runs its ${h.ranks} rank(s) as one host` });
    }
  }
  return findings;
}
