import os from 'node:os';
import { RingtrainError } from './errors.js';

/**
 * The address of network interface `name`: IPv4 preferred, else one that is not link-local IPv6
 * (a link-local one needs a scope to be bound or reached). Undefined when this machine has no
 * such interface or it has no usable address (the launcher then routes instead).
 */
export function findInterfaceAddress(name: string): string | undefined {
  const entries = os.networkInterfaces()[name] ?? [];
  const v4 = entries.find((e) => e.family === 'IPv4');
  const v6 = entries.find((e) => e.family === 'IPv6' && !e.address.toLowerCase().startsWith('fe80'));
  return (v4 ?? v6)?.address;
}

/** As findInterfaceAddress, for a rank told to use `name`: no such interface is a contract error listing the ones there are. */
export function interfaceAddress(name: string): string {
  const address = findInterfaceAddress(name);
  if (address !== undefined) return address;
  const all = os.networkInterfaces();
  if ((all[name] ?? []).length === 0) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_CONTRACT',
      `ringtrain: no network interface named '${name}' on ${os.hostname()} (there are: ${Object.keys(all).join(', ')})`,
    );
  }
  throw new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: interface '${name}' has no usable address`);
}

/** True when `address` is assigned to this machine (so a server can bind to it). */
export function isLocalAddress(address: string): boolean {
  if (address === 'localhost' || address.startsWith('127.') || address === '::1') return true;
  return Object.values(os.networkInterfaces()).some((list) => list?.some((e) => e.address === address));
}
