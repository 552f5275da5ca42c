/** Placing ranks on slots: host by host, first host first, as mpirun's default by-slot mapping. */
import os from 'node:os';
import { RingtrainError } from '../errors.js';
import type { HostEntry } from './hostfile.js';

export interface RankPlacement {
  rank: number;
  host: HostEntry;
  localRank: number;
  /** Ranks of this job on the same host (may be fewer than its slots when -np cuts it short). */
  localSize: number;
}

/** The host list used when none is given: this machine, one slot per CPU or `np` slots. */
export function localMachine(np: number | undefined): HostEntry[] {
  return [{ host: 'localhost', user: undefined, slots: np ?? os.availableParallelism(), origin: 'local machine' }];
}

export function placeRanks(hosts: readonly HostEntry[], np: number | undefined, hostsWhat: string): RankPlacement[] {
  const total = hosts.reduce((n, h) => n + h.slots, 0);
  if (np !== undefined && (!Number.isInteger(np) || np < 1)) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `-np must be a whole number >= 1, got ${np}`);
  }
  const size = np ?? total;
  if (size > total) {
    const list = hosts.map((h) => `${h.host}:${h.slots}`).join(', ');
    throw new RingtrainError(
      'ERR_RINGTRAIN_ARGUMENT',
      `-np ${size} is more than the ${total} slot(s) in ${hostsWhat} (${list}); add hosts or slots, or lower -np`,
    );
  }
  const placements: RankPlacement[] = [];
  let rank = 0;
  for (const host of hosts) {
    const here = Math.min(host.slots, size - rank);
    for (let localRank = 0; localRank < here; localRank++) {
      placements.push({ rank: rank++, host, localRank, localSize: here });
    }
    if (rank === size) break;
  }
  return placements;
}
