/**
 * The launcher across a real 4-host cluster: network namespaces joined by a bridge, Debian's sshd on
 * each host, a key made for the test. Needs root, iproute2 and openssh-server; in CI (CI=true) these
 * tests must run, elsewhere they are skipped, saying why.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown, clusterUp, describeLeftovers, HOSTS, leftovers, ROOT_NS_ADDRESS, skipCluster, type Cluster } from './cluster/cluster.js';
import { hasCommand, runCli, runCommand, startCli, tagged, waitUntil, type LauncherRankReport as Report } from './helpers/processes.js';

const RANK = 'test/fixtures/launcher-rank.mjs';

const ALLREDUCE = 'test/fixtures/launcher-allreduce.mjs';
// By absolute path: the hosts share this filesystem, but a non-interactive ssh login's PATH may not
// hold the node that runs the tests.
const NODE = process.execPath;

describe.skipIf(skipCluster())('launcher over ssh on a 4-host cluster', () => {
  let cluster: Cluster | undefined;
  const noLeftovers = async (): Promise<void> => {
    const clean = await waitUntil(() => HOSTS.every((_, i) => leftovers(cluster!, i).length === 0), 5_000);
    expect(clean, `processes left on the hosts:\n${describeLeftovers(cluster!)}`).toBe(true);
  };

  beforeAll(() => {
    cluster = clusterUp();
  });
  afterAll(() => clusterDown(cluster));

  it('runs 8 ranks on 4 hosts x 2 slots, each with its rank, local rank and host, the token never on a command line', async () => {
    const c = cluster!;
    const run = await runCli(['--hosts', c.hostfile, ...c.sshArgs, '-x', 'RT_TEST_EXPORT=x y', '--', NODE, RANK]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^ringtrain: 8 rank\(s\) on 4 host\(s\) finished in \d+\.\ds$/m);
    const reports = tagged<Report>(run.stdout, 'REPORT');
    expect([...reports.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const expectedHosts = [0, 0, 1, 1, 2, 2, 3, 3].map((h) => HOSTS[h]);
    for (const [rank, r] of reports) {
      const host = HOSTS[Math.floor(rank / 2)]!;
      expect(r).toMatchObject({ rank, size: 8, localRank: rank % 2, localSize: 2, exported: 'x y', cwd: process.cwd() });
      // The rank ran in its host's namespace, and reached the launcher's rendezvous from there.
      expect(r.addresses).toEqual([host]);
      expect(r.addr.host).toBe(ROOT_NS_ADDRESS);
      expect(r.tableHosts).toEqual(expectedHosts);
      expect(r.tokenLength).toBe(64);
      expect(r.tokenInCmdline).toBe(false);
      // One host identity per namespace host: the same kernel, but each namespace is its own machine.
      const ids = r.tableHostIds!;
      expect(new Set(ids).size).toBe(4);
      for (let i = 0; i < 8; i += 2) expect(ids[i]).toBe(ids[i + 1]);
    }
    await noLeftovers();
  });

  it('init() counts local ranks by host identity: namespace hosts (one kernel, one host name) stay separate machines', async () => {
    const c = cluster!;
    // Without the launcher's local ranks, init() derives them from the rendezvous table.
    const command = ['env', '-u', 'RINGTRAIN_LOCAL_RANK', '-u', 'RINGTRAIN_LOCAL_SIZE', NODE, ALLREDUCE];
    const run = await runCli(['-H', `localhost:1,${HOSTS[0]}:2,${HOSTS[1]}:2`, ...c.sshArgs, '--', ...command]);
    expect(run.code, run.stderr).toBe(0);
    const results = tagged<{ wrong: number; localRank: number; localSize: number; hostnames: string[] }>(run.stdout, 'RESULT');
    expect([...results.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    for (const r of results.values()) expect(new Set(r.hostnames).size).toBe(1); // every host has the same name
    expect([...results.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => [r.localRank, r.localSize, r.wrong])).toEqual([
      [0, 1, 0],
      [0, 2, 0],
      [1, 2, 0],
      [0, 2, 0],
      [1, 2, 0],
    ]);
    await noLeftovers();
  });

  it('two hostfile names for one namespace host are refused at the rendezvous with exit 2, naming both', async () => {
    const c = cluster!;
    const file = `${c.dir}/two-names.txt`;
    writeFileSync(file, `${HOSTS[0]} slots=2\nroot@${HOSTS[0]} slots=1\n`);
    const run = await runCli(['--hosts', file, ...c.sshArgs, '--', NODE, RANK]);
    expect(run.stderr).toMatch(
      new RegExp(
        `ringtrain: ranks \\d and 2 run on one machine \\(.*same kernel boot, IPC and network namespace\\), but ${file.replace(/[.]/g, '\\.')} names it twice, ` +
          `as '${HOSTS[0]!.replace(/\./g, '\\.')}' \\(${file.replace(/[.]/g, '\\.')}:1\\) and 'root@${HOSTS[0]!.replace(/\./g, '\\.')}' \\(${file.replace(/[.]/g, '\\.')}:2\\)`,
      ),
    );
    expect(run.stdout).not.toMatch(/REPORT/); // no rank got a table
    expect(run.code).toBe(2);
    await noLeftovers();
  });

  it('an all-reduce across the 8 ranks is exact (real core over the bridge, every port in --port-range)', async () => {
    const c = cluster!;
    const run = await runCli(['--hosts', c.hostfile, ...c.sshArgs, '--port-range', '47300-47340', '--timeout', '30', '--', NODE, ALLREDUCE]);
    expect(run.code, run.stderr).toBe(0);
    const results = tagged<{ wrong: number; size: number; localRank: number; gathered: number[]; peers: string[]; ports: number[]; rendezvous: string; addresses: string[] }>(run.stdout, 'RESULT');
    expect(results.size).toBe(8);
    for (const [rank, r] of results) {
      for (const port of [...r.ports, Number(r.rendezvous.split(':')[1])]) {
        expect(port).toBeGreaterThanOrEqual(47300);
        expect(port).toBeLessThanOrEqual(47340);
      }
      expect(r.wrong).toBe(0);
      expect(r.size).toBe(8);
      expect(r.localRank).toBe(rank % 2);
      expect(r.gathered).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(r.peers).toEqual([0, 0, 1, 1, 2, 2, 3, 3].map((h) => HOSTS[h]));
      expect(r.addresses).toEqual([HOSTS[Math.floor(rank / 2)]]);
    }
  });

  it('mixes a local rank (spawned directly, advertised on the bridge address) with remote ones', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `localhost:1,${HOSTS[0]}:1,${HOSTS[3]}:1`, ...c.sshArgs, '--', NODE, ALLREDUCE]);
    expect(run.code, run.stderr).toBe(0);
    const results = tagged<{ wrong: number; peers: string[]; addresses: string[] }>(run.stdout, 'RESULT');
    expect(results.size).toBe(3);
    for (const r of results.values()) {
      expect(r.wrong).toBe(0);
      expect(r.peers).toEqual([ROOT_NS_ADDRESS, HOSTS[0], HOSTS[3]]);
    }
    expect(results.get(0)!.addresses).toContain(ROOT_NS_ADDRESS); // rank 0 ran in the root namespace
  });

  it('a rank exiting 3 makes the launcher exit 3 within seconds, naming rank and host, nothing left on any host', async () => {
    const c = cluster!;
    const run = await runCli(['--hosts', c.hostfile, ...c.sshArgs, '--', NODE, RANK, '--fail', '5:3']);
    expect(run.stderr).toMatch(new RegExp(`ringtrain: rank 5 on ${HOSTS[2]!.replace(/\./g, '\\.')} exited with code 3; stopping the remaining 7 rank\\(s\\)`));
    expect(run.code).toBe(3);
    expect(run.ms).toBeLessThan(15_000);
    await noLeftovers();
  });

  it('SIGINT to the launcher stops every rank on every host and exits 130', async () => {
    const c = cluster!;
    const running = startCli(['--hosts', c.hostfile, ...c.sshArgs, '--', NODE, RANK, '--hold']);
    await running.waitForLines(/^\[\d\] READY \d$/, 8, 30_000);
    expect(HOSTS.every((_, i) => leftovers(c, i).length > 0)).toBe(true); // the ranks are there to stop
    const t = Date.now();
    running.child.kill('SIGINT');
    const run = await running.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('ringtrain: got SIGINT; stopping the remaining 8 rank(s)');
    expect(Date.now() - t).toBeLessThan(8_000);
    await noLeftovers();
  });

  it('a launcher killed outright (SIGKILL) still leaves nothing running on the hosts', async () => {
    const c = cluster!;
    const running = startCli(['-H', `${HOSTS[1]}:2`, ...c.sshArgs, '--', NODE, RANK, '--hold']);
    await running.waitForLines(/^\[\d\] READY \d$/, 2, 30_000);
    running.child.kill('SIGKILL');
    await running.done;
    await noLeftovers();
  });

  it('an unreachable host is named, the job fails without hanging', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `${HOSTS[0]}:1,10.78.0.77:1`, ...c.sshArgs, '--', NODE, RANK]);
    expect(run.stderr).toMatch(/rank 1 on 10\.78\.0\.77 could not be started: ssh to 10\.78\.0\.77 failed: .*10\.78\.0\.77/);
    expect(run.code).toBe(255);
    expect(run.ms).toBeLessThan(20_000);
    await noLeftovers();
  });

  it('an ssh key the hosts refuse is reported as an ssh failure naming the host', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `${HOSTS[2]}:2`, ...c.wrongKeyArgs, '--', NODE, RANK]);
    expect(run.stderr).toMatch(/rank \d on 10\.78\.0\.3 could not be started: ssh to 10\.78\.0\.3 failed: .*Permission denied.*passwordless ssh/);
    expect(run.code).toBe(255);
    expect(run.ms).toBeLessThan(10_000);
  });

  it('--ssh-port reaches sshd on another port', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `${HOSTS[3]}:1`, ...c.sshArgs, '--ssh-port', '2222', '--', NODE, RANK]);
    expect(run.code, run.stderr).toBe(0);
    expect(tagged<Report>(run.stdout, 'REPORT').get(0)!.addresses).toEqual([HOSTS[3]]);
    const refused = await runCli(['-H', `${HOSTS[3]}:1`, ...c.sshArgs, '--ssh-port', '2223', '--', NODE, RANK]);
    expect(refused.stderr).toMatch(/ssh to 10\.78\.0\.4 failed: .*port 2223: Connection refused/);
    expect(refused.code).toBe(255);
  });

  it('a command missing on a host is reported with 127, naming the host', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `${HOSTS[1]}:1`, ...c.sshArgs, '--', 'ringtrain-no-such-command']);
    expect(run.stderr).toContain(`rank 0 on ${HOSTS[1]} exited with code 127: command not found on ${HOSTS[1]}`);
    expect(run.code).toBe(127);
  });

  it('names ranks that never join by --start-timeout, with their hosts', async () => {
    const c = cluster!;
    const run = await runCli(['--hosts', c.hostfile, ...c.sshArgs, '--start-timeout', '3', '--', NODE, RANK, '--skip-join', '6']);
    expect(run.stderr).toContain(`1 of 8 rank(s) did not join the rendezvous within the start timeout (3s): 6 on ${HOSTS[3]} (running)`);
    expect(run.code).toBe(1);
    await noLeftovers();
  });

  it('--network-interface: the rendezvous is served on that interface and the ranks are told its name', async () => {
    const c = cluster!;
    const run = await runCli(['-H', `${HOSTS[0]}:1,${HOSTS[1]}:1`, ...c.sshArgs, '--network-interface', 'rtl-root', '--', NODE, RANK]);
    expect(run.code, run.stderr).toBe(0);
    for (const r of tagged<Report>(run.stdout, 'REPORT').values()) {
      expect(r.iface).toBe('rtl-root');
      expect(r.addr.host).toBe(ROOT_NS_ADDRESS);
    }
  });

  it.skipIf(!hasCommand('mpirun') && process.env.CI !== 'true')('Open MPI\'s mpirun across two hosts starts a script that works unchanged', async () => {
    const c = cluster!;
    const r = await runCommand(
      'mpirun',
      [
        '--allow-run-as-root', '--oversubscribe', '-H', `${HOSTS[0]}:2,${HOSTS[1]}:2`, '-np', '4',
        '--mca', 'plm_rsh_agent', `ssh -F ${c.dir}/ssh_config`,
        '--mca', 'oob_tcp_if_include', '10.78.0.0/24', '--mca', 'btl', 'self,tcp', '--mca', 'btl_tcp_if_include', '10.78.0.0/24',
        '-x', `RINGTRAIN_ADDR=${HOSTS[0]}:47412`, '-x', 'RINGTRAIN_TOKEN=mpi-job-secret', '-x', 'RINGTRAIN_TIMEOUT_MS=20000',
        NODE, ALLREDUCE,
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const res = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('RESULT '))
      .map((l) => JSON.parse(l.slice(7)) as { rank: number; localRank: number; wrong: number; addresses: string[] })
      .sort((a, b) => a.rank - b.rank);
    expect(res.map((x) => [x.rank, x.localRank, x.wrong, x.addresses])).toEqual([
      [0, 0, 0, [HOSTS[0]]],
      [1, 1, 0, [HOSTS[0]]],
      [2, 0, 0, [HOSTS[1]]],
      [3, 1, 0, [HOSTS[1]]],
    ]);
    await noLeftovers();
  });

  it('-np above the hostfile slots is refused before anything starts', async () => {
    const c = cluster!;
    const run = await runCli(['--hosts', c.hostfile, '-np', '9', ...c.sshArgs, '--', NODE, RANK]);
    expect(run.stderr).toContain(`-np 9 is more than the 8 slot(s) in ${c.hostfile}`);
    expect(run.code).toBe(2);
  });
});
