import os from 'node:os';
import { RingtrainError } from './errors.js';

/** The address of a named network interface (IPv4 preferred), or a clear error listing the ones there are. */
export function interfaceAddress(name: string): string {
  const all = os.networkInterfaces();
  const entries = all[name];
  if (!entries || entries.length === 0) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_CONTRACT',
      `ringtrain: no network interface named '${name}' on ${os.hostname()} (there are: ${Object.keys(all).join(', ')})`,
    );
  }
  const v4 = entries.find((e) => e.family === 'IPv4');
  const v6 = entries.find((e) => e.family === 'IPv6' && !e.address.startsWith('fe80'));
  const chosen = v4 ?? v6;
  if (!chosen) throw new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: interface '${name}' has no usable address`);
  return chosen.address;
}

/** True when `address` is assigned to this machine (so a server can bind to it). */
export function isLocalAddress(address: string): boolean {
  if (address === 'localhost' || address.startsWith('127.') || address === '::1') return true;
  return Object.values(os.networkInterfaces()).some((list) => list?.some((e) => e.address === address));
}
