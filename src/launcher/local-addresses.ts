/**
 * Which hosts are this machine, and which of this machine's addresses another host can reach.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { RingtrainError } from '../errors.js';

const LOOKUP_TIMEOUT_MS = 5_000;

function isLoopback(address: string): boolean {
  if (net.isIPv4(address)) return address.startsWith('127.');
  const a = address.toLowerCase();
  return a === '::1' || a.startsWith('::ffff:127.');
}

function ownAddresses(): Set<string> {
  const set = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) set.add(a.address.toLowerCase().replace(/%.*$/, ''));
  }
  return set;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves a host name to its addresses (an address resolves to itself). */
export async function resolveHost(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host.replace(/%.*$/, '')];
  try {
    const found = await withTimeout(dns.lookup(host, { all: true }), LOOKUP_TIMEOUT_MS, `looking up '${host}'`);
    if (found.length === 0) throw new Error('no addresses');
    return found.map((a) => a.address);
  } catch (e) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `cannot resolve host '${host}': ${(e as Error).message}`);
  }
}

/** True when `host` is this machine: localhost, a loopback address, this machine's name or one of its addresses. */
export async function isLocalHost(host: string): Promise<boolean> {
  const name = host.toLowerCase();
  if (name === 'localhost' || isLoopback(name)) return true;
  const own = ownAddresses();
  if (net.isIP(name)) return own.has(name.replace(/%.*$/, ''));
  const hostname = os.hostname().toLowerCase();
  if (name === hostname || name === hostname.split('.')[0]) return true;
  let addresses: string[];
  try {
    addresses = await resolveHost(host);
  } catch {
    return false; // ssh will say what is wrong with it
  }
  return addresses.every((a) => isLoopback(a) || own.has(a.toLowerCase()));
}

/**
 * The address this machine sends from when talking to `ip`: connecting a UDP socket only asks the
 * kernel for a route and sends nothing.
 */
export async function localAddressToward(ip: string): Promise<string> {
  const socket = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(9, ip, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return socket.address().address;
  } catch (e) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `no route from this machine to ${ip}: ${(e as Error).message}`);
  } finally {
    socket.close();
  }
}


