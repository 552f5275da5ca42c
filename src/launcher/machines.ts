/**
 * From host names to machines: every spelling of this machine (localhost, 127.x, ::1, its host
 * name, its addresses) is one host, and remote names that resolve to a common address are one
 * host, its slots added up where it was first named. What names cannot tell (two names of one
 * machine with nothing in common, a name that reaches different machines) the rendezvous finds out
 * from the ranks' host identities: see layoutError.
 */
import net from 'node:net';
import { RingtrainError } from '../errors.js';
import { formatHost, type HostEntry } from './hostfile.js';
import { isLocalHost, resolveHost } from './local-addresses.js';

/** A host as named, with what the launcher found out about it. */
export interface NamedHost {
  entry: HostEntry;
  /** This machine (its ranks are spawned directly, without ssh). */
  local: boolean;
  /** Its addresses; empty when it could not be resolved (ssh will say why). */
  addresses: readonly string[];
}

/** One machine of the job. */
export interface Machine {
  /** The first name it was given, with the slots of every name added up. */
  entry: HostEntry;
  local: boolean;
  /** Every name it was given, in order (the first is `entry`'s). */
  names: HostEntry[];
}

function normalizeAddress(address: string): string {
  return address.toLowerCase().replace(/%.*$/, '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

/**
 * Groups names into machines (pure). Local names form one machine whatever user they name, since
 * local ranks are spawned without ssh; remote names join when they name the same login user and
 * share an address.
 */
export function groupMachines(named: readonly NamedHost[]): Machine[] {
  const machines: { machine: Machine; user: string | undefined; addresses: Set<string> }[] = [];
  for (const n of named) {
    const addresses = new Set(n.addresses.map(normalizeAddress));
    const found = machines.find((m) =>
      n.local ? m.machine.local : !m.machine.local && m.user === n.entry.user && [...addresses].some((a) => m.addresses.has(a)),
    );
    if (found) {
      found.machine.entry.slots += n.entry.slots;
      found.machine.names.push(n.entry);
      for (const a of addresses) found.addresses.add(a);
    } else {
      machines.push({ machine: { entry: { ...n.entry }, local: n.local, names: [n.entry] }, user: n.entry.user, addresses });
    }
  }
  // A later name may have joined two machines that looked apart (b shares an address with a and c).
  for (let i = 0; i < machines.length; i++) {
    for (let j = i + 1; j < machines.length; j++) {
      const a = machines[i]!;
      const b = machines[j]!;
      if (a.machine.local || b.machine.local || a.user !== b.user || ![...b.addresses].some((x) => a.addresses.has(x))) continue;
      a.machine.entry.slots += b.machine.entry.slots;
      a.machine.names.push(...b.machine.names);
      for (const x of b.addresses) a.addresses.add(x);
      machines.splice(j, 1);
      j = i;
    }
  }
  return machines.map((m) => m.machine);
}

/** Finds out which names are this machine and what the others resolve to, then groups them. */
export async function identifyMachines(hosts: readonly HostEntry[]): Promise<Machine[]> {
  const named = await Promise.all(
    hosts.map(async (entry): Promise<NamedHost> => {
      const local = await isLocalHost(entry.host);
      let addresses: string[] = [];
      if (!local) addresses = await resolveHost(entry.host).catch(() => []);
      return { entry, local, addresses };
    }),
  );
  return groupMachines(named);
}

/**
 * The address an all-local job serves and advertises on: the IP literal the user named for this
 * machine (`-H [::1]:2` means ::1), else IPv4 loopback.
 */
export function localJobAddress(machine: Machine | undefined): string {
  const literal = machine?.names.find((n) => net.isIP(n.host) !== 0);
  return literal ? normalizeAddress(literal.host) : '127.0.0.1';
}

/** What one rank told the rendezvous about itself. */
export interface RankIdentity {
  rank: number;
  hostname: string;
  hostId: string;
}

/** True for identities read from the kernel; host-name fallbacks are too weak to fail a job on. */
function trusted(hostId: string): boolean {
  return hostId.startsWith('boot:');
}

/**
 * Compares a joining rank with those before it: two ranks on one machine placed under different
 * names (their local ranks would collide, e.g. both use GPU 0), or one name whose ranks run on
 * different machines. `machineOf` is where the launcher placed each rank.
 */
export function layoutError(
  joining: RankIdentity,
  joined: readonly RankIdentity[],
  machineOf: (rank: number) => Machine,
  hostsWhat: string,
): RingtrainError | undefined {
  if (!trusted(joining.hostId)) return undefined;
  const mine = machineOf(joining.rank);
  for (const other of joined) {
    if (!trusted(other.hostId)) continue;
    const theirs = machineOf(other.rank);
    const [first, second] = other.rank < joining.rank ? [other, joining] : [joining, other];
    const [firstMachine, secondMachine] = other.rank < joining.rank ? [theirs, mine] : [mine, theirs];
    if (other.hostId === joining.hostId && theirs !== mine) {
      return new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        `ranks ${first.rank} and ${second.rank} run on one machine (${first.hostname}: same kernel boot, IPC and network namespace), ` +
          `but ${hostsWhat} names it twice, as '${formatHost(firstMachine.entry)}' (${firstMachine.entry.origin}) and ` +
          `'${formatHost(secondMachine.entry)}' (${secondMachine.entry.origin}), so both names' ranks would count local ranks from 0 ` +
          '(and share GPUs): name each machine once',
      );
    }
    if (other.hostId !== joining.hostId && theirs === mine) {
      return new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        `'${formatHost(mine.entry)}' (${mine.entry.origin}) reached different machines: rank ${first.rank} runs on ${first.hostname}, ` +
          `rank ${second.rank} on ${second.hostname} (another kernel or namespace), so their local ranks would be wrong: ` +
          'name each machine by a name that always reaches it',
      );
    }
  }
  return undefined;
}
