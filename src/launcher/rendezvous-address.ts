/**
 * Where the launcher serves the rendezvous, and which address each host is told: one every rank can
 * reach. Local ranks of a job that also has remote ranks get a routable address too, because a rank
 * advertises its ring listener on the address its rendezvous connection came from.
 */
import { RingtrainError } from '../errors.js';
import { RendezvousServer, type RendezvousServerOptions } from '../rendezvous.js';
import { findInterfaceAddress } from '../interfaces.js';
import { localAddressToward, resolveHost } from './local-addresses.js';

export interface RendezvousPlan {
  /** Address to listen on. */
  bind: string;
  /** Address advertised to the ranks of each host (keyed by host name as given), and to local ranks. */
  advertiseTo: Map<string, string>;
  advertiseLocal: string;
  /** Said once to the user when --network-interface could not be honoured here. */
  warning: string | undefined;
}

/** `remoteHosts`: name or address, and where it was named (for messages). */
export async function planRendezvous(
  remoteHosts: readonly { host: string; origin: string }[],
  networkInterface: string | undefined,
  /** Where an all-local job serves and advertises: the address the user named for this machine, or loopback. */
  localAddress = '127.0.0.1',
): Promise<RendezvousPlan> {
  let warning: string | undefined;
  if (networkInterface !== undefined) {
    const address = findInterfaceAddress(networkInterface);
    if (address !== undefined) {
      return { bind: address, advertiseTo: new Map(remoteHosts.map((h) => [h.host, address])), advertiseLocal: address, warning };
    }
    warning = `this machine has no interface '${networkInterface}'; the rendezvous uses the address that routes to each host (the ranks still bind to '${networkInterface}')`;
  }
  if (remoteHosts.length === 0) {
    return { bind: localAddress, advertiseTo: new Map(), advertiseLocal: localAddress, warning };
  }
  const advertiseTo = new Map<string, string>();
  await Promise.all(
    remoteHosts.map(async ({ host, origin }) => {
      try {
        const [ip] = await resolveHost(host);
        advertiseTo.set(host, await localAddressToward(ip!));
      } catch (e) {
        throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `${(e as Error).message} (named in ${origin})`);
      }
    }),
  );
  const distinct = [...new Set(advertiseTo.values())];
  const first = advertiseTo.get(remoteHosts[0]!.host)!;
  return { bind: distinct.length === 1 ? first : '::', advertiseTo, advertiseLocal: first, warning };
}

/** Listens on a free port in `range` (any free port without one). */
export async function listenRendezvous(
  options: Omit<RendezvousServerOptions, 'port'>,
  range: readonly [number, number] | undefined,
): Promise<RendezvousServer> {
  const listenOn = async (host: string, port: number): Promise<RendezvousServer> => {
    try {
      return await RendezvousServer.listen({ ...options, host, port });
    } catch (e) {
      // '::' fails where IPv6 is off; all IPv4 addresses do as well then.
      if (host === '::' && (e as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') return RendezvousServer.listen({ ...options, host: '0.0.0.0', port });
      throw e;
    }
  };
  return listenInRange((port) => listenOn(options.host, port), range, `the rendezvous on ${options.host}`);
}

/**
 * Calls `listen(port)` on free ports of `range`, from a random one on, until one is not taken (port
 * 0 without a range); the launcher's rendezvous and the doctor's stand-in for it listen alike.
 */
export async function listenInRange<T>(listen: (port: number) => Promise<T>, range: readonly [number, number] | undefined, what: string): Promise<T> {
  if (range === undefined) return listen(0);
  const [lo, hi] = range;
  const count = hi - lo + 1;
  const offset = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const port = lo + ((offset + i) % count);
    try {
      return await listen(port);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
    }
  }
  throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `no free port for ${what} in --port-range ${lo}-${hi}`);
}
