/**
 * How many ports of --port-range a job needs on each machine: every rank listens on one port for
 * its ring links (outgoing connections use ephemeral ports), and the launcher's machine also
 * serves the rendezvous on one. Checked before anything starts, so a range too small is a usage
 * error that says so, not an `Address already in use` from some rank.
 */
import { RingtrainError } from '../errors.js';
import { formatHost, type HostEntry } from './hostfile.js';
import type { RankPlacement } from './slots.js';

/** Ports every rank binds in the range. */
export const PORTS_PER_RANK = 1;
/** Ports the launcher binds in the range on its own machine (the rendezvous). */
export const LAUNCHER_PORTS = 1;

export function checkPortBudget(
  range: readonly [number, number],
  placements: readonly RankPlacement[],
  isLocal: (host: HostEntry) => boolean,
): void {
  const [lo, hi] = range;
  const available = hi - lo + 1;
  const ranksOn = new Map<HostEntry, number>();
  for (const p of placements) ranksOn.set(p.host, (ranksOn.get(p.host) ?? 0) + 1);
  let worst: { host: HostEntry; ranks: number; needed: number; local: boolean } | undefined;
  for (const [host, ranks] of ranksOn) {
    const local = isLocal(host);
    const needed = ranks * PORTS_PER_RANK + (local ? LAUNCHER_PORTS : 0);
    if (!worst || needed > worst.needed) worst = { host, ranks, needed, local };
  }
  if (!worst || worst.needed <= available) return;
  const why = `one ring listener for each of its ${worst.ranks} rank(s)${worst.local ? ", and one for the launcher's rendezvous" : ''}`;
  throw new RingtrainError(
    'ERR_RINGTRAIN_ARGUMENT',
    `--port-range ${lo}-${hi} has ${available} port(s), too few for this job: ${formatHost(worst.host)} needs ${worst.needed} (${why}); ` +
      `give a range of at least ${worst.needed} ports (more if other programs use some of them)`,
  );
}
