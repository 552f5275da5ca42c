// The one lookup of a network interface's address: the launcher's (undefined when missing) and a
// rank's (a contract error listing the interfaces there are).
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { findInterfaceAddress, interfaceAddress } from '../../dist/interfaces.js';

describe('interface addresses', () => {
  it('the loopback interface has its IPv4 address', () => {
    const lo = Object.entries(os.networkInterfaces()).find(([, list]) => list?.some((e) => e.address === '127.0.0.1'));
    expect(lo, 'no interface holds 127.0.0.1').toBeDefined();
    expect(findInterfaceAddress(lo![0])).toBe('127.0.0.1');
    expect(interfaceAddress(lo![0])).toBe('127.0.0.1');
  });

  it('a missing interface: undefined for the launcher, a contract error naming the ones there are for a rank', () => {
    expect(findInterfaceAddress('no-such-if0')).toBeUndefined();
    expect(() => interfaceAddress('no-such-if0')).toThrow(/no network interface named 'no-such-if0' on .* \(there are: .*lo/);
    expect(() => interfaceAddress('no-such-if0')).toThrow(expect.objectContaining({ code: 'ERR_RINGTRAIN_CONTRACT' }));
  });
});
