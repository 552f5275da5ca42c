/** The doctor's pure parts, in process: link rounds, median flagging, findings, verdict, table. */
import { describe, expect, it } from 'vitest';
import type { AgentInfo } from '../../src/doctor/agent-messages.js';
import { addressFindings, unreachableKind } from '../../src/doctor/checks/address-check.js';
import { formatRate, linkFindings, linkRounds, median } from '../../src/doctor/checks/link-check.js';
import { loginFindings } from '../../src/doctor/checks/login-check.js';
import { reachabilityFindings } from '../../src/doctor/checks/reachability-check.js';
import { slotFindings } from '../../src/doctor/checks/slot-check.js';
import type { DoctorReport, HostReport, LinkResult, ProbeResult } from '../../src/doctor/report.js';
import { renderReport } from '../../src/doctor/table.js';
import { allFindings, verdictOf } from '../../src/doctor/verdict.js';

function info(over: Partial<AgentInfo> = {}): AgentInfo {
  return {
    ringtrain: '1.2.3',
    node: 'v20.20.0',
    nodeNapiVersion: 9,
    platform: 'linux',
    arch: 'x64',
    hostname: 'h',
    identity: `boot:b/ipc:[1]/net:[${Math.random()}]`,
    cpus: 8,
    cwd: '/w',
    addon: { ok: true, prebuilt: false, buildSystem: 'cmake-js', napiVersion: 8, cuda: false },
    gpus: null,
    ...over,
  };
}

function host(name: string, over: Partial<HostReport> = {}, infoOver: Partial<AgentInfo> = {}): HostReport {
  return {
    host: name,
    origin: 'hosts.txt:1',
    names: [`${name} (hosts.txt:1)`],
    ranks: 2,
    local: false,
    login: { ok: true, seconds: 0.4 },
    info: info(infoOver),
    control: { ok: true, address: '10.0.0.254:29500' },
    address: { interface: 'eth0', address: `10.0.0.${name.slice(1)}`, ports: [29501] },
    ...over,
  };
}

function link(from: string, to: string, mbps: number, rttMs = 0.2): LinkResult {
  return { from, to, port: 29501, ok: true, rttMs, bytesPerSecond: mbps * 1e6, bytes: mbps * 1e6 };
}

function probe(from: string, to: string, ok: boolean, failure?: ProbeResult['failure'], port = 29501): ProbeResult {
  return { from, to, address: to, port, ok, ...(failure ? { failure, error: failure === 'timeout' ? 'no answer within 3.0s' : 'ECONNREFUSED' } : {}), ms: 1 };
}

describe('link rounds', () => {
  it.each([2, 3, 4, 5, 8, 17])('with %i hosts: every host to both ring neighbours once, no host twice in a round', (n) => {
    const rounds = linkRounds(n);
    const all = rounds.flat().map(([a, b]) => `${a}>${b}`);
    const expected = new Set<string>();
    for (let i = 0; i < n; i++) {
      expected.add(`${i}>${(i + 1) % n}`);
      expected.add(`${i}>${(i + n - 1) % n}`);
    }
    expect(all.sort()).toEqual([...expected].sort());
    for (const r of rounds) {
      const used = r.flat();
      expect(new Set(used).size).toBe(used.length);
    }
    // A handful of rounds however many hosts (the test stays a few seconds).
    expect(rounds.length).toBeLessThanOrEqual(n === 3 ? 6 : 5);
  });

  it('has nothing to measure for one host', () => {
    expect(linkRounds(1)).toEqual([]);
    expect(linkRounds(0)).toEqual([]);
  });
});

describe('link flagging', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('flags a link below 70% of the median by name, not one at 75%', () => {
    const links = [link('a', 'b', 100), link('b', 'c', 100), link('c', 'a', 69), link('a', 'c', 75), link('b', 'a', 100), link('c', 'b', 100)];
    const f = linkFindings(links);
    expect(f.map((x) => x.message)).toEqual(['link c -> a: 69.0 MB/s, 69% of the median 100 MB/s: the whole ring would run at its speed']);
    expect(f[0]).toMatchObject({ severity: 'warn', check: 'links', host: 'c', pair: { from: 'c', to: 'a' } });
  });

  it('pins a host whose every outgoing link is slow', () => {
    const links = [link('a', 'b', 100), link('b', 'c', 100), link('c', 'a', 10), link('a', 'c', 100), link('b', 'a', 100), link('c', 'b', 10)];
    const msgs = linkFindings(links).map((x) => x.message);
    expect(msgs).toContain('every link from c is slow: look at c\'s network interface first');
    expect(msgs.filter((m) => m.startsWith('link c -> '))).toHaveLength(2);
  });

  it('flags a round trip far above the median, and a failed link test as an error', () => {
    const links = [link('a', 'b', 100, 0.2), link('b', 'c', 100, 0.2), link('c', 'a', 100, 5), { from: 'a', to: 'c', port: 1, ok: false, error: 'connection lost while sending' }];
    const f = linkFindings(links);
    expect(f.find((x) => x.message.includes('round trip 5.00 ms'))).toMatchObject({ severity: 'warn', pair: { from: 'c', to: 'a' } });
    expect(f.find((x) => x.severity === 'error')!.message).toBe('link a -> c: the test failed: connection lost while sending');
  });

  it('does not flag anything with a single measured link', () => {
    expect(linkFindings([link('a', 'b', 1)])).toEqual([]);
  });

  it('formats rates', () => {
    expect(formatRate(2.5e9)).toBe('2.50 GB/s');
    expect(formatRate(118e6)).toBe('118 MB/s');
    expect(formatRate(2.4e6)).toBe('2.4 MB/s');
    expect(formatRate(900)).toBe('1 kB/s');
    expect(formatRate(undefined)).toBe('-');
  });
});

describe('login findings', () => {
  it('names the host with another ringtrain version as an error, the majority as the fix', () => {
    const f = loginFindings([host('h1'), host('h2'), host('h3', {}, { ringtrain: '1.2.2' })]);
    expect(f).toEqual([
      {
        severity: 'error',
        check: 'login',
        host: 'h3',
        message: 'h3 runs ringtrain 1.2.2, the other hosts 1.2.3: ranks of different versions cannot form a ring',
        fix: 'install ringtrain 1.2.3 on h3',
      },
    ]);
  });

  it('refuses a Node.js older than the package supports, notes a different major', () => {
    const f = loginFindings([host('h1'), host('h2', {}, { node: 'v18.19.0' }), host('h3', {}, { node: 'v22.1.0' }), host('h4')]);
    expect(f.filter((x) => x.severity === 'error').map((x) => x.host)).toEqual(['h2']);
    expect(f.filter((x) => x.severity === 'note').map((x) => x.host).sort()).toEqual(['h2', 'h3']);
  });

  it('reports failed and hung logins and an addon that does not load', () => {
    const f = loginFindings([
      host('h1', { login: { ok: false, seconds: 3, error: 'ssh to h1 failed: Permission denied' }, info: undefined }),
      host('h2', { login: { ok: false, seconds: 15, hung: true, error: 'logged in, but the check did not answer within 15s: the host hangs' }, info: undefined }),
      host('h3', {}, { addon: { ok: false, error: 'cannot load the native addon' } }),
    ]);
    expect(f.map((x) => [x.severity, x.host])).toEqual([['error', 'h1'], ['error', 'h2'], ['error', 'h3']]);
    expect(f[1]!.fix).toContain('doctor -v');
  });
});

describe('address findings', () => {
  it('classifies loopback and container bridges', () => {
    expect(unreachableKind('lo', '127.0.0.1')).toBe('loopback');
    expect(unreachableKind(undefined, '::1')).toBe('loopback');
    expect(unreachableKind('docker0', '172.18.0.1')).toBe('container bridge');
    expect(unreachableKind('eth0', '172.17.0.5')).toBe('container bridge');
    expect(unreachableKind('br-3f2a1b9c0d4e', '172.20.0.1')).toBe('container bridge');
    expect(unreachableKind('eth0', '10.1.2.3')).toBeUndefined();
  });

  it('a loopback address is an error across machines, fine on one', () => {
    const lo = { interface: 'lo', address: '127.0.0.1', ports: [1] };
    const across = addressFindings([host('h1', { address: lo }), host('h2')], undefined);
    expect(across.filter((f) => f.severity === 'error')).toMatchObject([{ severity: 'error', check: 'addresses', host: 'h1' }]);
    expect(across[0]!.message).toBe('h1\'s ranks would advertise 127.0.0.1 (lo), a loopback address the other hosts cannot reach');
    const same = info({ identity: 'boot:x/ipc:[1]/net:[1]' });
    const oneMachine = addressFindings([host('h1', { address: lo, info: same }), host('h2', { address: lo, info: same })], undefined);
    expect(oneMachine.filter((f) => f.message.includes('loopback'))).toEqual([]);
  });

  it('notes interface names that differ, only without --network-interface', () => {
    const hosts = [host('h1'), host('h2'), host('h3', { address: { interface: 'ens5', address: '10.0.0.3', ports: [1] } })];
    expect(addressFindings(hosts, undefined)).toMatchObject([{ severity: 'note', message: expect.stringContaining('h3 (ens5)') }]);
    expect(addressFindings(hosts, 'eth0')).toEqual([]);
  });

  it('reports a --network-interface a host lacks', () => {
    const f = addressFindings([host('h1'), host('h2', { address: { interface: 'ib0', address: undefined, error: "no network interface named 'ib0' on h2 (there are: lo, eth0)", ports: [] } })], 'ib0');
    expect(f).toMatchObject([{ severity: 'error', host: 'h2', message: "h2: no network interface named 'ib0' on h2 (there are: lo, eth0)" }]);
  });

  it('an error when two hosts the launcher keeps apart are one machine (the rendezvous would refuse the job)', () => {
    const same = info({ identity: 'boot:x/ipc:[1]/net:[7]' });
    const f = addressFindings([host('h1', { info: same, origin: 'hosts.txt:1' }), host('node1', { info: same, origin: 'hosts.txt:4' }), host('h3')], undefined);
    expect(f).toMatchObject([{ severity: 'error', host: 'node1' }]);
    expect(f[0]!.message).toContain('h1 (hosts.txt:1) and node1 (hosts.txt:4) are one machine');
    // Names the launcher merged itself are only worth a note.
    const merged = addressFindings([host('h1', { names: ['h1 (-H)', '10.0.0.1 (-H)'] }), host('h2')], undefined);
    expect(merged).toMatchObject([{ severity: 'note', host: 'h1', message: 'h1 (-H), 10.0.0.1 (-H) are one machine: the launcher runs its 2 rank(s) as one host' }]);
  });
});

describe('reachability findings', () => {
  it('groups the failed ports of a pair, and names a host nobody reaches', () => {
    const probes = [
      probe('a', 'b', false, 'timeout', 1),
      probe('a', 'b', false, 'timeout', 2),
      probe('c', 'b', false, 'timeout', 1),
      probe('c', 'b', false, 'timeout', 2),
      probe('a', 'c', true),
      probe('b', 'c', true),
    ];
    const f = reachabilityFindings([host('a'), host('b'), host('c')], probes);
    expect(f.map((x) => x.message)).toEqual([
      'a -> b (b) ports 1, 2: no answer within 3.0s: dropped, by a firewall on b or between',
      'c -> b (b) ports 1, 2: no answer within 3.0s: dropped, by a firewall on b or between',
      'no host can reach b on any probed port of the range: look at b\'s firewall first',
    ]);
    expect(f[0]).toMatchObject({ severity: 'error', host: 'b', pair: { from: 'a', to: 'b', port: 1 } });
  });

  it('names a host that cannot reach the launcher', () => {
    const f = reachabilityFindings([host('a', { control: { ok: false, address: '10.0.0.254:29500', error: 'no answer within 5.0s' } })], []);
    expect(f[0]!.message).toBe('a cannot reach the launcher at 10.0.0.254:29500: no answer within 5.0s; its ranks could not join the rendezvous');
  });
});

describe('slot findings', () => {
  it('warns about more ranks than CPUs, and than GPUs with CUDA', () => {
    const f = slotFindings([
      host('a', { ranks: 4 }, { cpus: 2 }),
      host('b', { ranks: 4 }, { cpus: 64, addon: { ok: true, cuda: true }, gpus: [{ index: 0, name: 'H100' }, { index: 1, name: 'H100' }] }),
      host('c', { ranks: 2 }, { cpus: 2 }),
    ]);
    expect(f.map((x) => x.message)).toEqual(['a: 4 ranks on 2 CPU(s): oversubscribed, every rank would wait for the slowest', 'b: 4 ranks share 2 GPU(s)']);
  });
});

describe('verdict and table', () => {
  function report(hosts: HostReport[], probes: ProbeResult[], links: LinkResult[]): DoctorReport {
    const findings = allFindings({ hosts, probes, links, networkInterface: null });
    return {
      version: 1,
      mode: 'doctor',
      hostsWhat: 'hosts.txt',
      portRange: [29500, 29510],
      networkInterface: null,
      launcherAddress: '10.0.0.254:29500',
      hosts,
      probes,
      links,
      findings,
      ...verdictOf(findings),
      seconds: 4.2,
    };
  }
  const healthyProbes = ['h1', 'h2', 'h3'].flatMap((a) => ['h1', 'h2', 'h3'].filter((b) => b !== a).map((b) => probe(a, b, true)));
  const healthyLinks = [link('h1', 'h2', 100), link('h2', 'h3', 101), link('h3', 'h1', 99), link('h1', 'h3', 100), link('h2', 'h1', 100), link('h3', 'h2', 98)];

  it('exit 0 with only notes, 1 with a warning or an error', () => {
    expect(verdictOf([])).toEqual({ verdict: 'pass', exitCode: 0 });
    expect(verdictOf([{ severity: 'note', check: 'login', message: '' }])).toEqual({ verdict: 'pass', exitCode: 0 });
    expect(verdictOf([{ severity: 'warn', check: 'links', message: '' }])).toEqual({ verdict: 'warn', exitCode: 1 });
    expect(verdictOf([{ severity: 'warn', check: 'links', message: '' }, { severity: 'error', check: 'login', message: '' }])).toEqual({ verdict: 'fail', exitCode: 1 });
  });

  it('renders a healthy cluster as rows of ok and a PASS line', () => {
    const text = renderReport(report([host('h1'), host('h2'), host('h3')], healthyProbes, healthyLinks));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('ringtrain doctor: 3 host(s) from hosts.txt, port range 29500-29510, interface default (the route to the launcher)');
    expect(lines[2]).toMatch(/^HOST +LOGIN +NODE +RINGTRAIN +ADDON +ADDRESS +REACH +LINK OUT +SLOTS +STATUS$/);
    expect(lines[3]).toMatch(/^h1 +ok 0\.4s +v20\.20\.0 +1\.2\.3 +built CPU +eth0 10\.0\.0\.1 +ok in 2\/2 out 2\/2 +100 MB\/s 0\.20ms +2\/8 CPU +ok$/);
    expect(lines.at(-1)).toBe('PASS: 3 host(s) ready for the job (4.2s)');
    expect(text).not.toContain('\x1b[');
    expect(renderReport(report([host('h1')], [], []), true)).toContain('\x1b[32mok');
  });

  it('renders failures: a row per problem link, the findings with fixes, a FAIL line; errors first', () => {
    const probes = healthyProbes.map((p) => (p.to === 'h2' ? { ...p, ok: false, failure: 'refused' as const, error: 'ECONNREFUSED' } : p));
    const links = [link('h1', 'h3', 100), link('h3', 'h1', 10), link('h3', 'h1', 100)];
    const text = renderReport(report([host('h1'), host('h2'), host('h3', { ranks: 16 })], probes, links));
    expect(text).toMatch(/^h2 .* FAIL in 0\/2 out 2\/2 .* FAIL$/m);
    expect(text).toMatch(/^FROM +TO +PORT +LINK +PROBLEM$/m);
    expect(text).toMatch(/^h1 +h2 +29501 +FAIL +refused: a firewall on h2 rejects it, or nothing listens there$/m);
    expect(text).toMatch(/^h3 +h1 +29501 +SLOW +10\.0 MB\/s, 10% of the median 100 MB\/s$/m);
    const findingLines = text.split('\n').filter((l) => /^(error|warning|note) /.test(l));
    expect(findingLines[0]).toMatch(/^error \[reachability\]/);
    expect(findingLines.at(-1)).toMatch(/^warning \[slots\] h3: 16 ranks on 8 CPU\(s\)/);
    expect(text).toContain('    fix: allow TCP port of --port-range from h1 on h2');
    expect(text.trimEnd().split('\n').at(-1)).toBe('FAIL: 3 error(s): the job would fail; 2 warning(s): the job would run slowly or may fail (4.2s)');
  });
});
