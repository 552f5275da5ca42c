/**
 * One host identity for the project (kernel boot id, IPC and network namespace), and the launcher's
 * pure logic built on it: names grouped into machines, local ranks, the rendezvous layout check,
 * the --port-range budget. In-process unit tests; a real job on one machine under two host names is
 * in test/host-identity.test.ts, the launcher end to end in launcher-local and launcher-cluster.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostIdentity, localPlacement } from '../../dist/host-identity.js';
import type { HostEntry } from '../../dist/launcher/hostfile.js';
import { groupMachines, layoutError, localJobAddress, type Machine, type NamedHost } from '../../dist/launcher/machines.js';
import { checkPortBudget } from '../../dist/launcher/port-budget.js';
import { placeRanks } from '../../dist/launcher/slots.js';

const entry = (host: string, slots: number, origin: string, user?: string): HostEntry => ({ host, user, slots, origin });
const local = (host: string, slots: number, origin: string, user?: string): NamedHost => ({ entry: entry(host, slots, origin, user), local: true, addresses: [] });
const remote = (host: string, slots: number, origin: string, addresses: string[], user?: string): NamedHost => ({
  entry: entry(host, slots, origin, user),
  local: false,
  addresses,
});
const brief = (machines: Machine[]) => machines.map((m) => [m.entry.host, m.entry.slots, m.local, m.names.map((n) => n.origin)]);

describe('host identity', () => {
  it('is the kernel boot id with this process\'s IPC and network namespaces', () => {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    expect(hostIdentity()).toBe(`boot:${boot}/${readlinkSync('/proc/self/ns/ipc')}/${readlinkSync('/proc/self/ns/net')}`);
  });

  it('local rank is the place among the ranks of one machine in rank order, whatever the host names say', () => {
    const peers = [
      { rank: 0, hostname: 'same-name', hostId: 'boot:a/ipc:[1]/net:[1]' },
      { rank: 1, hostname: 'same-name', hostId: 'boot:a/ipc:[1]/net:[2]' }, // another network namespace
      { rank: 2, hostname: 'other-name', hostId: 'boot:a/ipc:[1]/net:[1]' },
      { rank: 3, hostname: 'same-name', hostId: 'boot:a/ipc:[1]/net:[2]' },
    ];
    expect([0, 1, 2, 3].map((r) => localPlacement(peers, r))).toEqual([
      { localRank: 0, localSize: 2 },
      { localRank: 0, localSize: 2 },
      { localRank: 1, localSize: 2 },
      { localRank: 1, localSize: 2 },
    ]);
    // Peers from before host identities are grouped by host name.
    const old = [{ rank: 0, hostname: 'a' }, { rank: 1, hostname: 'b' }, { rank: 2, hostname: 'a' }];
    expect(localPlacement(old, 2)).toEqual({ localRank: 1, localSize: 2 });
  });
});

describe('host names grouped into machines', () => {
  it('every spelling of this machine is one host, first-named place, slots added up', () => {
    const machines = groupMachines([
      local('localhost', 2, 'hosts:1'),
      remote('node1', 1, 'hosts:2', ['10.0.0.1']),
      local('127.0.0.1', 1, 'hosts:3'),
      local('::1', 1, 'hosts:4', 'alice'),
      local('my-hostname', 1, 'hosts:5'),
    ]);
    expect(brief(machines)).toEqual([
      ['localhost', 5, true, ['hosts:1', 'hosts:3', 'hosts:4', 'hosts:5']],
      ['node1', 1, false, ['hosts:2']],
    ]);
    const placements = placeRanks(machines.map((m) => m.entry), undefined, 'hosts');
    expect(placements.map((p) => [p.rank, p.host.host, p.localRank, p.localSize])).toEqual([
      [0, 'localhost', 0, 5],
      [1, 'localhost', 1, 5],
      [2, 'localhost', 2, 5],
      [3, 'localhost', 3, 5],
      [4, 'localhost', 4, 5],
      [5, 'node1', 0, 1],
    ]);
  });

  it('remote names sharing an address are one host (also when a third name links them); other users or addresses stay apart', () => {
    const machines = groupMachines([
      remote('a', 1, 'h:1', ['10.0.0.1']),
      remote('b', 1, 'h:2', ['10.0.0.2']),
      remote('a-and-b', 1, 'h:3', ['10.0.0.2', '10.0.0.1']),
      remote('10.0.0.1', 1, 'h:4', ['10.0.0.1']),
      remote('c', 2, 'h:5', ['fe80::1%eth0']),
      remote('c6', 1, 'h:6', ['FE80::1']),
      remote('bob-a', 1, 'h:7', ['10.0.0.1'], 'bob'),
      remote('mapped', 1, 'h:8', ['::ffff:10.0.0.2']),
    ]);
    expect(brief(machines)).toEqual([
      ['a', 5, false, ['h:1', 'h:3', 'h:4', 'h:8', 'h:2']],
      ['c', 3, false, ['h:5', 'h:6']],
      ['bob-a', 1, false, ['h:7']],
    ]);
  });

  it('an all-local job serves on the address literal the user named ([::1] means ::1), else 127.0.0.1', () => {
    expect(localJobAddress(groupMachines([local('::1', 2, '-H')])[0])).toBe('::1');
    expect(localJobAddress(groupMachines([local('localhost', 1, '-H'), local('127.0.0.2', 1, '-H')])[0])).toBe('127.0.0.2');
    expect(localJobAddress(groupMachines([local('localhost', 2, '-H')])[0])).toBe('127.0.0.1');
    expect(localJobAddress(undefined)).toBe('127.0.0.1');
  });
});

describe('rendezvous layout check', () => {
  const machines = groupMachines([
    remote('10.0.0.1', 2, 'hosts.txt:1', ['10.0.0.1']),
    remote('10.0.0.1', 1, 'hosts.txt:2', ['10.0.0.1'], 'root'),
  ]);
  const placements = placeRanks(machines.map((m) => m.entry), undefined, 'hosts.txt');
  const machineOf = (rank: number): Machine => machines.find((m) => m.entry === placements[rank]!.host)!;
  const id = (n: number): string => `boot:b/ipc:[1]/net:[${n}]`;

  it('two hostfile names for one machine are an error naming both', () => {
    const err = layoutError({ rank: 2, hostname: 'h0', hostId: id(1) }, [{ rank: 0, hostname: 'h0', hostId: id(1) }], machineOf, 'hosts.txt');
    expect(err?.code).toBe('ERR_RINGTRAIN_ARGUMENT');
    expect(err?.message).toBe(
      'ranks 0 and 2 run on one machine (h0: same kernel boot, IPC and network namespace), but hosts.txt names it twice, ' +
        "as '10.0.0.1' (hosts.txt:1) and 'root@10.0.0.1' (hosts.txt:2), so both names' ranks would count local ranks from 0 " +
        '(and share GPUs): name each machine once',
    );
  });

  it('one name whose ranks run on different machines is an error; a consistent layout and host-name fallbacks pass', () => {
    const err = layoutError({ rank: 1, hostname: 'hB', hostId: id(2) }, [{ rank: 0, hostname: 'hA', hostId: id(1) }], machineOf, 'hosts.txt');
    expect(err?.message).toMatch(/^'10\.0\.0\.1' \(hosts\.txt:1\) reached different machines: rank 0 runs on hA, rank 1 on hB/);
    expect(layoutError({ rank: 1, hostname: 'h', hostId: id(1) }, [{ rank: 0, hostname: 'h', hostId: id(1) }], machineOf, 'hosts.txt')).toBeUndefined();
    expect(layoutError({ rank: 2, hostname: 'h', hostId: id(3) }, [{ rank: 0, hostname: 'h', hostId: id(1) }], machineOf, 'hosts.txt')).toBeUndefined();
    expect(layoutError({ rank: 2, hostname: 'h', hostId: 'hostname:h' }, [{ rank: 0, hostname: 'h', hostId: 'hostname:h' }], machineOf, 'x')).toBeUndefined();
  });
});

describe('--port-range budget', () => {
  const machines = groupMachines([local('localhost', 2, '-H'), remote('n1', 3, '-H', ['10.0.0.1'])]);
  const placements = placeRanks(machines.map((m) => m.entry), undefined, '-H');
  const isLocal = (h: HostEntry): boolean => machines.find((m) => m.entry === h)!.local;

  it('each rank needs one port on its machine, the launcher one more on its own', () => {
    expect(() => checkPortBudget([100, 102], placements, isLocal)).not.toThrow(); // 2+1 here, 3 on n1
    expect(() => checkPortBudget([100, 101], placements, isLocal)).toThrow(
      '--port-range 100-101 has 2 port(s), too few for this job: localhost needs 3 (one ring listener for each of its 2 rank(s), ' +
        "and one for the launcher's rendezvous); give a range of at least 3 ports",
    );
    const more = placeRanks(groupMachines([local('localhost', 1, '-H'), remote('n1', 4, '-H', ['10.0.0.1'])]).map((m) => m.entry), undefined, '-H');
    expect(() => checkPortBudget([100, 102], more, (h) => h.host === 'localhost')).toThrow(/n1 needs 4 \(one ring listener for each of its 4 rank\(s\)\)/);
  });
});

