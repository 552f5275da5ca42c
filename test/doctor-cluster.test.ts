/**
 * `ringtrain doctor` (and `--preflight`) on the launcher tests' namespace cluster: a healthy cluster
 * passes; each fault, injected for real inside one host's namespace (an nftables rule, tc shaping,
 * a PATH or a mount that sshd gives that host, sshd refusing the key), is named with its host and
 * pair; every run ends in bounded time and leaves nothing on the hosts. One cluster for the file.
 * Needs root, iproute2, openssh-server and nftables; in CI these tests must run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../src/doctor/report.js';
import { clusterDown, clusterUnavailable, clusterUp, describeLeftovers, HOSTS, leftovers, type Cluster } from './cluster/cluster.js';
import { hasCommand, ROOT, runCli, waitUntil, type CliRun } from './helpers/processes.js';

const RANGE = '47300-47340';
/** Every host's link (egress) is shaped to this, so that the healthy links are even on a busy machine. */
const RATE = '200mbit';
const SLOW_RATE = '20mbit';
const [H0, H1, H2, H3] = HOSTS as [string, string, string, string];
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function unavailable(): string | undefined {
  return clusterUnavailable() ?? (hasCommand('nft') ? undefined : 'nftables is not installed: apt-get install -y nftables');
}

const skip = ((): boolean => {
  const reason = unavailable();
  if (reason === undefined) return false;
  if (process.env.CI === 'true') return false; // beforeAll fails loudly instead
  console.warn(`skipping the doctor cluster tests: ${reason}`);
  return true;
})();

function inHost(i: number, cmd: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', `rtl-h${i}`, cmd, ...args], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function shape(i: number, rate: string): void {
  inHost(i, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', rate, 'burst', '64kb', 'latency', '50ms');
}

/** An nftables table on host i that drops or rejects the test port range (removed by unfirewall). */
function firewall(i: number, verdict: 'drop' | 'reject'): void {
  inHost(i, 'nft', 'add', 'table', 'inet', 'rtdoctor');
  inHost(i, 'nft', 'add', 'chain', 'inet', 'rtdoctor', 'input', '{ type filter hook input priority 0; policy accept; }');
  inHost(i, 'nft', 'add', 'rule', 'inet', 'rtdoctor', 'input', 'tcp', 'dport', RANGE, verdict === 'drop' ? 'drop' : 'reject with tcp reset');
}

function unfirewall(i: number): void {
  try {
    inHost(i, 'nft', 'delete', 'table', 'inet', 'rtdoctor');
  } catch {
    // not there
  }
}

function tcpOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface SshdVariant {
  /** PATH that sshd gives every session on the host (sshd_config SetEnv). */
  path?: string;
  /** The host sees this version in ringtrain's package.json (a bind mount in a mount namespace of its sshd). */
  ringtrainVersion?: string;
  /** sshd accepts no key at all. */
  refuseKeys?: boolean;
  /** The host sees an empty directory here (a tmpfs in a mount namespace of its sshd). */
  hide?: string;
}

describe.skipIf(skip)('ringtrain doctor on a namespace ssh cluster', () => {
  let c: Cluster;
  /** Undone after each test, last first, whether it passed or not. */
  const restore: (() => void | Promise<void>)[] = [];

  const ssh = (): string[] => c.sshArgs;
  const doctor = (hosts: readonly string[], ...extra: string[]): Promise<CliRun> =>
    runCli(['doctor', '-H', hosts.map((h) => `${h}:2`).join(','), ...ssh(), '--port-range', RANGE, '--probe-timeout', '2', ...extra], { killAfterMs: 90_000 });
  /** For the cases about something else than links: a shorter bandwidth test. */
  const QUICK_LINKS = ['--link-seconds', '1.5'];
  const json = (run: CliRun): DoctorReport => JSON.parse(run.stdout) as DoctorReport;
  const row = (run: CliRun, host: string): string => run.stdout.split('\n').find((l) => l.startsWith(`${host} `)) ?? `(no row for ${host})`;

  /** Restarts host i's sshd as cluster.sh starts it, plus the variant. */
  async function restartSshd(i: number, v: SshdVariant = {}): Promise<void> {
    const pidFile = path.join(c.dir, `sshd-${i}.pid`);
    try {
      execFileSync('sh', ['-c', `kill $(cat ${pidFile})`]);
    } catch {
      // already gone
    }
    await waitUntil(() => !hasSshd(i), 3_000);
    const args = ['-f', path.join(c.dir, 'sshd_config'), '-p', '22', '-p', '2222', '-o', `ListenAddress=${HOSTS[i]}`, '-o', `PidFile=${pidFile}`];
    if (v.path) args.push('-o', `SetEnv=PATH=${v.path}`);
    if (v.refuseKeys) args.push('-o', 'AuthorizedKeysFile=none');
    if (v.ringtrainVersion || v.hide) {
      const mounts: string[] = [];
      if (v.ringtrainVersion) {
        const pkg = path.join(c.dir, `package-${i}.json`);
        writeFileSync(pkg, JSON.stringify({ name: 'ringtrain', version: v.ringtrainVersion, type: 'module' }));
        mounts.push(`mount --bind '${pkg}' '${path.join(ROOT, 'package.json')}'`);
      }
      if (v.hide) mounts.push(`mount -t tmpfs rtdoctor '${v.hide}'`);
      const sshd = ['/usr/sbin/sshd', ...args].map((a) => `'${a}'`).join(' ');
      inHost(i, 'unshare', '-m', 'sh', '-c', `${mounts.join(' && ')} && exec ${sshd}`);
    } else {
      inHost(i, '/usr/sbin/sshd', ...args);
    }
    let up = false;
    for (let t = 0; t < 50 && !up; t++) {
      up = await tcpOpen(HOSTS[i]!, 22);
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    expect(up, `sshd on ${HOSTS[i]} did not come back`).toBe(true);
  }

  function hasSshd(i: number): boolean {
    try {
      return execFileSync('ip', ['netns', 'pids', `rtl-h${i}`], { encoding: 'utf8' }).trim() !== '';
    } catch {
      return false;
    }
  }

  const noLeftovers = async (): Promise<void> => {
    const clean = await waitUntil(() => HOSTS.every((_, i) => leftovers(c, i).length === 0), 5_000);
    expect(clean, `processes left on the hosts:\n${describeLeftovers(c)}`).toBe(true);
  };

  beforeAll(() => {
    const reason = unavailable();
    if (reason !== undefined) throw new Error(`the doctor cluster tests cannot run: ${reason}`);
    c = clusterUp();
    for (let i = 0; i < HOSTS.length; i++) shape(i, RATE);
  });
  afterEach(async () => {
    for (const undo of restore.splice(0).reverse()) await undo();
    await noLeftovers();
  });
  afterAll(() => clusterDown(c));

  it('passes a healthy 3-host cluster: every row ok, exit 0, within seconds', async () => {
    const run = await doctor([H0, H1, H2]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    for (const h of [H0, H1, H2]) {
      expect(row(run, h)).toMatch(new RegExp(`^${h.replace(/\./g, '\\.')} +ok \\d+\\.\\ds +v\\d+\\.\\S+ +${VERSION.replace(/\./g, '\\.')} .* eth0 ${h.replace(/\./g, '\\.')} +ok in 6/6 out 6/6 +\\S+ [MG]B/s .* 2/2 CPU.* ok$`));
    }
    expect(run.stdout).not.toMatch(/FAIL|WARN|SLOW|error|warning/);
    expect(run.stdout).toMatch(/^PASS: 3 host\(s\) ready for the job \(\d+\.\ds\)$/m);
    expect(run.ms).toBeLessThan(30_000);
    console.log(`doctor, healthy cluster:\n${run.stdout}`);
  });

  it('--json: one object with every host, probe and link, and the verdict', async () => {
    const run = await doctor([H0, H1, H2], '--json');
    expect(run.code, `${run.stderr}\n${run.code === 1 ? JSON.stringify(json(run).findings, null, 1) : run.stdout}`).toBe(0);
    const r = json(run);
    expect(r).toMatchObject({ version: 1, mode: 'doctor', verdict: 'pass', exitCode: 0, portRange: [47300, 47340], findings: [] });
    expect(r.hosts.map((h) => h.host)).toEqual([H0, H1, H2]);
    for (const h of r.hosts) {
      expect(h).toMatchObject({ origin: '-H', ranks: 2, local: false, login: { ok: true }, control: { ok: true }, address: { interface: 'eth0', address: h.host } });
      expect(h.info).toMatchObject({ ringtrain: VERSION, cpus: expect.any(Number), addon: { ok: true } });
      expect(h.info!.identity).toMatch(/^boot:.*net:\[\d+\]$/);
      expect(h.address!.ports.length).toBeGreaterThanOrEqual(1);
      for (const p of h.address!.ports) expect(p >= 47300 && p <= 47340).toBe(true);
    }
    expect(new Set(r.hosts.map((h) => h.info!.identity)).size).toBe(3);
    expect(r.launcherAddress).toMatch(/^10\.78\.0\.254:473[0-4]\d$/);
    // Every host probed every port of every other host.
    expect(r.probes.length).toBe(r.hosts.reduce((n, h) => n + 2 * h.address!.ports.length, 0));
    expect(r.probes.every((p) => p.ok)).toBe(true);
    // Each host's links to its ring neighbours, both ways, each measured once.
    expect(r.links.map((l) => `${l.from}>${l.to}`).sort()).toEqual([`${H0}>${H1}`, `${H0}>${H2}`, `${H1}>${H0}`, `${H1}>${H2}`, `${H2}>${H0}`, `${H2}>${H1}`]);
    for (const l of r.links) {
      expect(l.ok).toBe(true);
      expect(l.rttMs).toBeGreaterThan(0);
      // Shaped to 200 Mbit/s: 25 MB/s at most (plus the token bucket's burst).
      expect(l.bytesPerSecond).toBeGreaterThan(5e6);
      expect(l.bytesPerSecond).toBeLessThan(40e6);
    }
  });

  it('names the host whose firewall drops the port range, and every pair and port', async () => {
    firewall(1, 'drop');
    restore.push(() => unfirewall(1));
    const run = await doctor([H0, H1, H2]);
    expect(run.code).toBe(1);
    expect(row(run, H1)).toMatch(/FAIL in 0\/\d out \d\/\d .*FAIL$/);
    for (const from of [H0, H2]) {
      expect(run.stdout).toMatch(new RegExp(`^${from} +${H1} +47300,47320,47340 +FAIL +no answer .*dropped, by a firewall on ${H1}`, 'm'));
      expect(run.stdout).toContain(`error [reachability] ${from} -> ${H1} (${H1}) ports `);
    }
    expect(run.stdout).toContain(`no host can reach ${H1} on any probed port of the range`);
    expect(row(run, H0)).toMatch(/ ok$/);
    expect(run.stdout).toMatch(/^FAIL: \d+ error\(s\): the job would fail/m);
    console.log(`doctor, ${H1} drops ${RANGE}:\n${run.stdout}`);
  });

  it('names a link shaped to a tenth of the others, and its host', async () => {
    shape(2, SLOW_RATE);
    restore.push(() => shape(2, RATE));
    const run = await doctor([H0, H1, H2]);
    expect(run.code).toBe(1);
    for (const to of [H0, H1]) {
      const m = new RegExp(`^${H2} +${to} +473\\d\\d +SLOW +[\\d.]+ [Mk]B/s, (\\d+)% of the median`, 'm').exec(run.stdout);
      expect(m, run.stdout).not.toBeNull();
      expect(Number(m![1])).toBeLessThan(30);
      expect(run.stdout).toContain(`warning [links] link ${H2} -> ${to}: `);
    }
    expect(run.stdout).toContain(`every link from ${H2} is slow: look at ${H2}'s network interface first`);
    expect(row(run, H2)).toMatch(/SLOW .* WARN$/);
    for (const h of [H0, H1]) expect(row(run, h)).toMatch(/ ok$/);
    expect(run.stdout).toMatch(/^WARN: \d+ warning\(s\): the job would run slowly/m);
    console.log(`doctor, ${H2} shaped to ${SLOW_RATE}:\n${run.stdout}`);
  });

  it('names every host that lacks the --network-interface given', async () => {
    const run = await doctor([H0, H1], '--network-interface', 'ib0', ...QUICK_LINKS);
    expect(run.code).toBe(1);
    for (const h of [H0, H1]) {
      expect(row(run, h)).toMatch(/ FAIL$/);
      expect(run.stdout).toMatch(new RegExp(`error \\[addresses\\] ${h}: no network interface named 'ib0' on .*\\(there are: .*eth0`));
    }
  });

  it('names a host where node is not on the PATH of an ssh login', async () => {
    const bin = path.join(c.dir, 'no-node-bin');
    mkdirSync(bin, { recursive: true });
    // What the rank wrapper needs, and no node.
    for (const tool of ['env', 'sleep', 'setsid', 'cat']) {
      try {
        symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), path.join(bin, tool));
      } catch {
        // linked by an earlier run
      }
    }
    await restartSshd(3, { path: bin });
    restore.push(() => restartSshd(3));
    const run = await doctor([H0, H1, H3], ...QUICK_LINKS);
    expect(run.code).toBe(1);
    expect(row(run, H3)).toMatch(/^10\.78\.0\.4 +FAIL +- .*FAIL$/);
    expect(run.stdout).toMatch(new RegExp(`error \\[login\\] ${H3}: 'node' was not found in the PATH of a non-interactive ssh login.*install Node\\.js there`));
    expect(row(run, H0)).toMatch(/ ok$/);
  });

  it('names a host with another ringtrain version', async () => {
    await restartSshd(3, { ringtrainVersion: '0.0.9' });
    restore.push(() => restartSshd(3));
    const run = await doctor([H0, H1, H3], ...QUICK_LINKS);
    expect(run.code).toBe(1);
    expect(row(run, H3)).toMatch(/ 0\.0\.9 .*FAIL$/);
    expect(run.stdout).toContain(`error [login] ${H3} runs ringtrain 0.0.9, the other hosts ${VERSION}: ranks of different versions cannot form a ring`);
    expect(run.stdout).toContain(`fix: install ringtrain ${VERSION} on ${H3}`);
  });

  it('names a host where the working directory does not exist', async () => {
    const hidden = mkdtempSync(path.join(os.tmpdir(), 'rtdoctor-cwd-'));
    const cwd = path.join(hidden, 'job');
    mkdirSync(cwd);
    restore.push(() => rmSync(hidden, { recursive: true, force: true }));
    await restartSshd(3, { hide: hidden });
    restore.push(() => restartSshd(3));
    const run = await runCli(['doctor', '-H', `${H0}:2,${H3}:2`, ...ssh(), '--port-range', RANGE, '--link-seconds', '1'], { cwd, killAfterMs: 90_000 });
    expect(run.code).toBe(1);
    expect(row(run, H3)).toMatch(/^10\.78\.0\.4 +FAIL .*FAIL$/);
    expect(run.stdout).toContain(`error [login] ${H3}: the working directory ${cwd} does not exist there`);
    expect(row(run, H0)).toMatch(/ ok$/);
  });

  it('names a host that hangs in the check, within its deadline, and stops what it left there', async () => {
    const bin = path.join(c.dir, 'hang-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'node'), '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
    await restartSshd(3, { path: `${bin}:/usr/bin:/bin` });
    restore.push(() => restartSshd(3));
    const run = await doctor([H0, H1, H3], '--check-timeout', '4', ...QUICK_LINKS);
    expect(run.code).toBe(1);
    expect(row(run, H3)).toMatch(/^10\.78\.0\.4 +HUNG .*FAIL$/);
    expect(run.stdout).toContain(`error [login] ${H3}: logged in, but the check did not answer within 4s: the host hangs`);
    expect(run.ms).toBeLessThan(25_000);
    await noLeftovers(); // the hung "node" is gone too
  });

  it('names an ssh key the host refuses, and an unreachable host, together with a rejecting firewall and a slow link', async () => {
    await restartSshd(3, { refuseKeys: true });
    restore.push(() => restartSshd(3));
    firewall(1, 'reject');
    restore.push(() => unfirewall(1));
    shape(2, SLOW_RATE);
    restore.push(() => shape(2, RATE));
    const run = await doctor([H0, H1, H2, H3, '10.78.0.77'], '--check-timeout', '6');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`error \\[login\\] ${H3}: ssh to ${H3} failed: .*Permission denied.*passwordless ssh`));
    expect(run.stdout).toMatch(/error \[login\] 10\.78\.0\.77: (ssh to 10\.78\.0\.77 failed: .*(No route to host|timed out).*host unreachable|ssh did not connect within 6s)/);
    for (const from of [H0, H2]) expect(run.stdout).toMatch(new RegExp(`^${from} +${H1} +47300,47320,47340 +FAIL +refused: a firewall on ${H1} rejects it`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^${H2} +${H0} +473\\d\\d +SLOW`, 'm'));
    expect(row(run, H0)).toMatch(/ ok$/);
    expect(run.ms).toBeLessThan(40_000);
    console.log(`doctor, faults together:\n${run.stdout}`);
  });

  it('names two host names of one machine that the launcher would keep apart (its rendezvous would refuse the job)', async () => {
    const run = await runCli(['doctor', '-H', `${H0}:1,root@${H0}:1,${H1}:1`, ...ssh(), '--port-range', RANGE, '--link-seconds', '1'], { killAfterMs: 90_000 });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`error [addresses] ${H0} (-H) and root@${H0} (-H) are one machine (same boot, IPC and network namespace)`);
    expect(row(run, `root@${H0}`)).toMatch(/ FAIL$/);
    // No link test between the two names: they would only measure the host's loopback.
    expect(run.stdout).not.toMatch(new RegExp(`^(root@)?${H0} +(root@)?${H0} `, 'm'));
  });

  it('--preflight: a job on a broken cluster fails in seconds with the doctor\'s findings, and runs on a healthy one', async () => {
    firewall(1, 'drop');
    restore.push(() => unfirewall(1));
    const job = ['-H', `${H0}:1,${H1}:1`, ...ssh(), '--port-range', RANGE, '--preflight', '--', process.execPath, 'test/fixtures/launcher-rank.mjs'];
    const broken = await runCli(job);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`error [reachability] ${H0} -> ${H1} (${H1}) ports `);
    expect(broken.stderr).toMatch(/ringtrain: preflight failed after \d+\.\ds: not starting the job/);
    expect(broken.stdout).not.toContain('REPORT'); // no rank ran
    expect(broken.ms).toBeLessThan(20_000);
    unfirewall(1);
    const healthy = await runCli(job);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout.match(/REPORT/g)?.length).toBe(2);
  });
});
