import os from 'node:os';
import { formatHostPort } from './address.js';
import { RingCommunicator, type OperationObserver } from './communicator.js';
import { elasticClient } from './elastic-client.js';
import { resolveContract, type RankContract } from './contract.js';
import { RingtrainError } from './errors.js';
import { hostIdentity, localPlacement } from './host-identity.js';
import { interfaceAddress, isLocalAddress } from './interfaces.js';
import { fromNativeError, loadNative, nativeTuning, type NativeCommunicator } from './native.js';
import { RendezvousClient, RendezvousServer } from './rendezvous.js';
import { jobSettings } from './settings.js';
import { Timeline } from './timeline.js';
import type { Communicator, InitOptions } from './types.js';

let defaultCommunicator: Communicator | undefined;
/** init() calls of this process run one after the other (see init()). */
let initQueue: Promise<unknown> = Promise.resolve();
/** Rendezvous this process completed, per rendezvous address: the generation its next init() joins. */
const generations = new Map<string, number>();
/** init() calls of this process so far (a timeline tells their communicators apart by it). */
let communicatorsMade = 0;

/** The communicator made by the last successful init(), for helpers that default to it. */
export function currentCommunicator(): Communicator {
  if (!defaultCommunicator) {
    throw new RingtrainError('ERR_RINGTRAIN_NOT_INITIALIZED', 'ringtrain: no communicator yet: call `await init()` first');
  }
  if (defaultCommunicator.closed) {
    throw new RingtrainError('ERR_RINGTRAIN_CLOSED', 'ringtrain: the communicator made by the last init() is closed: call `await init()` again');
  }
  return defaultCommunicator;
}

async function serveIfRankZero(c: RankContract, env: NodeJS.ProcessEnv, generation: number): Promise<RendezvousServer | undefined> {
  if (c.rank !== 0 || env.RINGTRAIN_LAUNCHER === '1' || !c.addr) return undefined;
  const host = c.iface ? interfaceAddress(c.iface) : isLocalAddress(c.addr.host) ? c.addr.host : '0.0.0.0';
  try {
    return await RendezvousServer.listen({
      host,
      port: c.addr.port,
      size: c.size,
      token: c.token,
      timeoutMs: c.settings.timeoutMs,
      generation,
      onReject: (remote, reason) => process.stderr.write(`ringtrain: rendezvous rejected a connection from ${remote}: ${reason}\n`),
    });
  } catch (e) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_RENDEZVOUS',
      `ringtrain: rank 0 could not serve the rendezvous on ${host}:${c.addr.port}: ${(e as Error).message}` +
        ' (is the port taken, e.g. by another job? choose another RINGTRAIN_ADDR port)',
    );
  }
}

/** A world of one: no rendezvous and no sockets. */
async function worldOfOne(
  c: RankContract,
  binding: ReturnType<typeof loadNative>,
  timing: boolean,
  hostname: string,
  observer: OperationObserver | undefined,
): Promise<Communicator> {
  let nativeComm: NativeCommunicator;
  try {
    nativeComm = new binding.NativeCommunicator({
      ...nativeTuning(c.settings),
      rank: 0,
      size: 1,
      token: c.token,
      bindHost: '',
      timing,
    });
    await nativeComm.connect([]);
  } catch (e) {
    throw fromNativeError(e); // e.g. no fds left for its eventfds
  }
  const peers = [{ rank: 0, host: '127.0.0.1', port: 0, hostname, hostId: hostIdentity(), localRank: 0, pid: process.pid }];
  const comm = new RingCommunicator(nativeComm, { rank: 0, size: 1, localRank: 0, localSize: 1, peers, settings: c.settings }, observer);
  defaultCommunicator = comm;
  return comm;
}

/**
 * Joins the job: resolves the rank contract, meets the other ranks at the rendezvous, and forms the
 * ring. Resolves once every rank is connected.
 *
 * May be called again, after close() or while earlier communicators are open: each call makes a
 * new, independent communicator (its own ring and ports). Every rank must make the same sequence
 * of init() calls: the n-th call of each rank meets the others' n-th (a rendezvous generation).
 * Calls in one process run one after the other, in call order.
 */
export function init(options: InitOptions = {}): Promise<Communicator> {
  const run = initQueue.then(() => initOnce(options));
  initQueue = run.catch(() => undefined);
  return run;
}

async function initOnce(given: InitOptions | undefined, abandoned?: Promise<never>): Promise<Communicator> {
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: init() takes an options object, got ${given === null ? 'null' : typeof given}`);
  }
  const options = given ?? {};
  const env = options.env ?? process.env;
  // Elastic job (ringtrain --min-np): the launcher hands out every world, the first one included.
  const elastic = options.rank === undefined ? elasticClient(env) : undefined;
  if (elastic) {
    const w = await elastic.nextWorld(defaultCommunicator ? 'left the previous world' : 'starting');
    // Each world has a rendezvous of its own, met once: a port used again later is a new server.
    generations.delete(w.addr);
    const opts = { ...options, rank: w.rank, size: w.size, localRank: w.localRank, localSize: w.localSize, addr: w.addr, token: w.token };
    return initOnce(opts, elastic.abandoned(w.gen));
  }
  const c = resolveContract(options);
  const binding = loadNative();
  const timeline = Timeline.fromEnv(env, c.rank);
  // Each init() of this process is one communicator: its calls count their seq from 1 again.
  const communicator = communicatorsMade++;
  const observer: OperationObserver | undefined = timeline ? (e) => timeline.record({ ...e, communicator }) : undefined;
  const hostname = os.hostname();

  if (c.size === 1) return worldOfOne(c, binding, timeline !== undefined, hostname, observer);

  if (c.iface) interfaceAddress(c.iface); // a missing interface fails now, not after the rendezvous
  const where = formatHostPort(c.addr!.host, c.addr!.port);
  const generation = generations.get(where) ?? 0;
  const server = await serveIfRankZero(c, env, generation);
  let nativeComm: NativeCommunicator | undefined;
  try {
    const client = await RendezvousClient.open(c.addr!, c.settings.timeoutMs, generation);
    const advertise = c.iface ? interfaceAddress(c.iface) : client.localAddress.replace(/^::ffff:/, '');
    try {
      nativeComm = new binding.NativeCommunicator({
        ...nativeTuning(c.settings),
        rank: c.rank,
        size: c.size,
        token: c.token,
        bindHost: advertise,
        timing: timeline !== undefined,
        portMin: c.portRange?.[0] ?? 0,
        portMax: c.portRange?.[1] ?? 0,
      });
    } catch (e) {
      throw fromNativeError(e);
    }
    const peers = await client.join(
      {
        rank: c.rank,
        size: c.size,
        host: advertise,
        port: nativeComm.port,
        hostname,
        hostId: hostIdentity(),
        localRank: c.localRank ?? 0,
        localSize: c.localSize,
        pid: process.pid,
        settings: jobSettings(c.settings),
      },
      c.token,
      generation,
    );
    generations.set(where, generation + 1);
    if (server) {
      await server.table;
      await server.close();
    }
    try {
      const connecting = nativeComm.connect(peers.map((p) => ({ host: p.host, port: p.port, hostname: p.hostname })));
      if (abandoned) {
        connecting.catch(() => undefined);
        await Promise.race([connecting, abandoned]);
      } else {
        await connecting;
      }
    } catch (e) {
      if (!(abandoned && e instanceof RingtrainError && e.code === 'ERR_RINGTRAIN_RESET')) throw fromNativeError(e);
      // The launcher gave this world up (a member died while it formed): do not wait out the
      // connect to the dead peer. Its close runs after the connect attempt ends, on its own.
      void nativeComm.close().catch(() => undefined);
      nativeComm = undefined;
      throw e;
    }
    const placement = localPlacement(peers, c.rank);
    const comm = new RingCommunicator(
      nativeComm,
      {
        rank: c.rank,
        size: c.size,
        localRank: c.localRank ?? placement.localRank,
        localSize: c.localSize ?? placement.localSize,
        peers,
        settings: c.settings,
      },
      observer,
    );
    defaultCommunicator = comm;
    return comm;
  } catch (e) {
    await server?.close().catch(() => undefined);
    await nativeComm?.close().catch(() => undefined);
    throw e;
  }
}
