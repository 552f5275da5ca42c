/**
 * The one answer to "do these two processes run on the same machine?" for all of ringtrain: the
 * launcher's host merging, init()'s local ranks, the rendezvous' layout check, and whatever later
 * needs a machine boundary (shared memory, hierarchical all-reduce).
 *
 * Same machine = same kernel boot, same IPC namespace (so System V and POSIX shared memory would
 * be shared) and same network namespace (so loopback reaches the other). Containers and the
 * network-namespace hosts of the test clusters are therefore separate machines, as they are to
 * every other program. Host names are not used: they are neither unique nor stable.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/** What localPlacement needs of a peer (PeerInfo has it). */
export interface MachineOf {
  rank: number;
  hostname: string;
  hostId?: string | undefined;
}

let cached: string | undefined;

function readOrUndefined(read: () => string): string | undefined {
  try {
    const value = read().trim();
    return value === '' ? undefined : value;
  } catch {
    return undefined;
  }
}

/** The identity of a machine seen only by its host name (no /proc): what other ranks fall back to. */
export function hostnameIdentity(hostname: string): string {
  return `hostname:${hostname}`;
}

/**
 * This process's machine: `boot:<boot id>/ipc:[inode]/net:[inode]` on Linux; the host name where
 * /proc cannot say (then two namespaces of one kernel look like one machine).
 */
export function hostIdentity(): string {
  if (cached !== undefined) return cached;
  const boot = readOrUndefined(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const ipc = readOrUndefined(() => readlinkSync('/proc/self/ns/ipc'));
  const net = readOrUndefined(() => readlinkSync('/proc/self/ns/net'));
  cached = boot && ipc && net ? `boot:${boot}/${ipc}/${net}` : hostnameIdentity(os.hostname());
  return cached;
}

/**
 * Local rank and local size of `rank`: its place among the ranks that share its machine, in rank
 * order, and how many they are. Peers from before host identities fall back to their host name.
 */
export function localPlacement(peers: readonly MachineOf[], rank: number): { localRank: number; localSize: number } {
  const machine = (p: MachineOf): string => p.hostId ?? hostnameIdentity(p.hostname);
  const mine = machine(peers.find((p) => p.rank === rank)!);
  const same = peers.filter((p) => machine(p) === mine).sort((a, b) => a.rank - b.rank);
  return { localRank: same.findIndex((p) => p.rank === rank), localSize: same.length };
}
