import { describe, expect, it } from 'vitest';
import { formatHost, mergeHosts, parseHostfile, parseHostList } from '../../dist/launcher/hostfile.js';
import { localMachine, placeRanks } from '../../dist/launcher/slots.js';
import os from 'node:os';

const brief = (hosts: { host: string; user: string | undefined; slots: number }[]) => hosts.map((h) => [formatHost(h), h.slots]);

describe('hostfile parsing', () => {
  it('reads Open MPI, Horovod and bare host lines with comments, blank lines and IPv6 literals', () => {
    const text = [
      '# training cluster',
      '',
      'node1 slots=4   # Open MPI style',
      'node2:2',
      '   node3',
      'alice@node4 slots=2 max_slots=8',
      'fd00::7 slots=3',
      '[fd00::8]:2',
      '[fd00::9]',
      '10.0.0.5:6',
      '\t',
    ].join('\n');
    expect(brief(parseHostfile(text, 'hosts.txt'))).toEqual([
      ['node1', 4],
      ['node2', 2],
      ['node3', 1],
      ['alice@node4', 2],
      ['fd00::7', 3],
      ['fd00::8', 2],
      ['fd00::9', 1],
      ['10.0.0.5', 6],
    ]);
  });

  it('merges a host named twice into one, adding its slots, at the place it was first named', () => {
    const hosts = parseHostfile('a slots=2\nb:1\nA:3\nb\n', 'h');
    expect(brief(hosts)).toEqual([
      ['a', 5],
      ['b', 2],
    ]);
    expect(hosts[0]!.origin).toBe('h:1');
    expect(brief(mergeHosts([...parseHostList('x:1,y:1'), ...parseHostList('x:2')]))).toEqual([
      ['x', 3],
      ['y', 1],
    ]);
  });

  it.each([
    ['node1 slots=abc', 'hosts.txt:2: slots must be a whole number >= 1'],
    ['node1 slots=0', 'hosts.txt:2: slots must be a whole number >= 1'],
    ['node1:0', "hosts.txt:2: the slot count in 'node1:0' must be a whole number >= 1"],
    ['node1 cpus=4', "hosts.txt:2: unknown field 'cpus'"],
    ['node1 4', "hosts.txt:2: unexpected '4' after the host"],
    ['node1:2 slots=3', 'hosts.txt:2: slots given twice'],
    ['bad!host', "hosts.txt:2: 'bad!host' is not a valid host name"],
    ['[fd00::1', 'hosts.txt:2:'],
    ['[node1]:2', "hosts.txt:2: '[node1]' is not an IPv6 address"],
    ['1:2:x', "hosts.txt:2: '1:2:x' is not an IPv6 address"],
    ['bad user@node1', "hosts.txt:2: unexpected 'user@node1'"],
    ['b@d@node1', "hosts.txt:2: 'b@d' in 'b@d@node1' is not a valid user name"],
  ])('rejects %j naming the file and line', (line, message) => {
    expect(() => parseHostfile(`# header\n${line}\nok slots=1\n`, 'hosts.txt')).toThrow(message);
  });

  it('rejects a hostfile with no hosts', () => {
    expect(() => parseHostfile('# nothing\n\n', 'empty.txt')).toThrow('empty.txt: no hosts in the hostfile');
  });

  it('reads -H lists with slots, bare hosts and bracketed IPv6', () => {
    expect(brief(parseHostList('a:2,b,[::1]:3,bob@c:4'))).toEqual([
      ['a', 2],
      ['b', 1],
      ['::1', 3],
      ['bob@c', 4],
    ]);
    expect(() => parseHostList('a:2,,b')).toThrow("-H 'a:2,,b': empty host in the list");
    expect(() => parseHostList('a:x')).toThrow("-H 'a:x': the slot count in 'a:x' must be a whole number >= 1");
  });
});

describe('rank placement', () => {
  const hosts = parseHostList('a:2,b:2,c:2');

  it('fills hosts one after the other, with local rank and local size per host', () => {
    const placed = placeRanks(hosts, undefined, '-H').map((p) => [p.rank, p.host.host, p.localRank, p.localSize]);
    expect(placed).toEqual([
      [0, 'a', 0, 2],
      [1, 'a', 1, 2],
      [2, 'b', 0, 2],
      [3, 'b', 1, 2],
      [4, 'c', 0, 2],
      [5, 'c', 1, 2],
    ]);
  });

  it('uses the first N slots for -np N; a host cut short has a smaller local size', () => {
    const placed = placeRanks(hosts, 3, '-H').map((p) => [p.rank, p.host.host, p.localRank, p.localSize]);
    expect(placed).toEqual([
      [0, 'a', 0, 2],
      [1, 'a', 1, 2],
      [2, 'b', 0, 1],
    ]);
  });

  it('refuses -np above the slots, saying how many there are', () => {
    expect(() => placeRanks(hosts, 7, 'hosts.txt')).toThrow('-np 7 is more than the 6 slot(s) in hosts.txt (a:2, b:2, c:2)');
    expect(() => placeRanks(hosts, 0, 'hosts.txt')).toThrow('-np must be a whole number >= 1, got 0');
  });

  it('without hosts uses this machine, one slot per CPU or -np', () => {
    expect(localMachine(undefined)).toEqual([{ host: 'localhost', user: undefined, slots: os.availableParallelism(), origin: 'local machine' }]);
    expect(placeRanks(localMachine(5), 5, 'the local machine').map((p) => p.localSize)).toEqual([5, 5, 5, 5, 5]);
  });
});
