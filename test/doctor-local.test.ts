/**
 * `ringtrain doctor` on this machine alone (no root, no ssh): the CLI's exit codes, the agent's own
 * deadline, and the authenticated probes and link test over real loopback sockets.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { linkTest, probe } from '../src/doctor/probe-client.js';
import { ProbeListener } from '../src/doctor/probe-listener.js';
import type { DoctorReport } from '../src/doctor/report.js';
import { runCli } from './helpers/processes.js';

describe('ringtrain doctor on the local machine', () => {
  it('passes this machine: one row, exit 0, within seconds', async () => {
    const run = await runCli(['doctor']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^localhost +ok \d+\.\ds +v\d+\.\d+\.\d+ +\S+ +(prebuilt|built) (CPU|CUDA).* lo 127\.0\.0\.1 +ok .* ok$/m);
    expect(run.stdout).toMatch(/^PASS: 1 host\(s\) ready for the job/m);
    expect(run.ms).toBeLessThan(20_000);
  });

  it('--json: two spellings of this machine are one host, as the launcher places them; a note, exit 0', async () => {
    const run = await runCli(['doctor', '-H', 'localhost:1,127.0.0.1:1', '--port-range', '47700-47720', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as DoctorReport;
    expect(r.hosts.map((h) => [h.host, h.local, h.login.ok, h.ranks, h.names])).toEqual([['localhost', true, true, 2, ['localhost (-H)', '127.0.0.1 (-H)']]]);
    expect(r.findings).toEqual([
      { severity: 'note', check: 'addresses', host: 'localhost', message: 'localhost (-H), 127.0.0.1 (-H) are one machine: the launcher runs its 2 rank(s) as one host' },
    ]);
    expect(r.verdict).toBe('pass');
    expect(r.hosts[0]!.address!.ports.every((p) => p >= 47700 && p <= 47720)).toBe(true);
    expect(r.launcherAddress).toMatch(/^127\.0\.0\.1:477[0-2]\d$/);
  });

  it('a --port-range too small for the job is an unusable command line (exit 2)', async () => {
    const run = await runCli(['doctor', '-np', '2', '--port-range', '47700-47701']);
    expect(run.stderr).toContain('--port-range 47700-47701 has 2 port(s), too few for this job');
    expect(run.code).toBe(2);
  });

  it.each([
    [['doctor', '--no-such-option'], /Unknown argument/],
    [['doctor', 'extra-word'], /Unknown argument: extra-word/],
    [['doctor', '--port-range', '9-1'], /--port-range: expected a port range A-B/],
    [['doctor', '--hosts', '/nonexistent/hostfile'], /cannot read the hostfile/],
    [['doctor', '--check-timeout', '0'], /--check-timeout must be a number > 0/],
    [['doctor', '--hosts', 'a', '-H', 'b'], /mutually exclusive/],
  ])('exits 2 for an unusable command line: %j', async (args, message) => {
    const run = await runCli(args);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
  });

  it('--help describes every check and exits 0', async () => {
    const run = await runCli(['doctor', '--help']);
    expect(run.code).toBe(0);
    for (const word of ['login', 'addresses', 'reachability', 'links', 'slots', '--json', '--check-timeout', 'Exit status']) expect(run.stdout).toContain(word);
  });

  it('the agent gives up by itself at its lifetime, whatever hangs', async () => {
    // A launcher address that accepts and never answers.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const env = { ...process.env, RINGTRAIN_TOKEN: 't', RINGTRAIN_DOCTOR_CONTROL: `127.0.0.1:${port}`, RINGTRAIN_DOCTOR_HOST: 'x', RINGTRAIN_DOCTOR_LIFETIME_MS: '1500' };
      const run = await runCli(['doctor', '--agent'], { env, killAfterMs: 20_000 });
      expect(run.code).toBe(3);
      expect(run.ms).toBeLessThan(6_000);
      expect(run.stdout).toMatch(/^@@ringtrain-doctor \{"t":"info"/);
    } finally {
      silent.close();
    }
  });

  it('--preflight on a healthy machine lets the job run', async () => {
    const run = await runCli(['-np', '2', '--preflight', '-v', '--', process.execPath, '-e', 'console.log("ran")']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/ringtrain: preflight passed on 1 host\(s\) in \d+\.\ds/);
    expect(run.stdout.match(/ran/g)).toHaveLength(2);
  });
});

describe('doctor probes over real sockets', () => {
  const listeners: ProbeListener[] = [];
  afterEach(() => {
    for (const l of listeners.splice(0)) l.close();
  });

  async function listener(token: string, range?: [number, number]): Promise<number[]> {
    const l = new ProbeListener(token);
    listeners.push(l);
    return l.listen('127.0.0.1', range);
  }

  it('listens at both ends and the middle of the range', async () => {
    expect(await listener('k', [47730, 47740])).toEqual([47730, 47735, 47740]);
    // The same range again: the next free port from each end.
    expect(await listener('k', [47730, 47740])).toEqual([47731, 47736, 47739]);
  });

  it('accepts the job token, and tells a wrong token and a closed port apart', async () => {
    const [port] = await listener('secret');
    const target = { host: 'h', address: '127.0.0.1', port: port! };
    expect(await probe(target, 'me', 'secret', 2_000)).toMatchObject({ ok: true, port });
    expect(await probe(target, 'me', 'wrong', 2_000)).toMatchObject({ ok: false, failure: 'auth', error: expect.stringContaining("did not accept this job's token") });
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await probe({ ...target, port: free }, 'me', 'secret', 2_000)).toMatchObject({ ok: false, failure: 'refused' });
  });

  it('something else on the port is not mistaken for the doctor', async () => {
    const other = net.createServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const port = (other.address() as net.AddressInfo).port;
      const r = await probe({ host: 'h', address: '127.0.0.1', port }, 'me', 'secret', 2_000);
      expect(r.ok).toBe(false);
      expect(['auth', 'error']).toContain(r.failure);
    } finally {
      other.close();
    }
  });

  it('measures latency and the bytes the receiver acknowledges', async () => {
    const [port] = await listener('secret');
    const r = await linkTest({ host: 'h', address: '127.0.0.1', port: port! }, 'me', 'secret', 10, 200, 5_000);
    expect(r.ok, r.error).toBe(true);
    expect(r.rttMs).toBeGreaterThan(0);
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.seconds).toBeGreaterThanOrEqual(0.2);
    const bad = await linkTest({ host: 'h', address: '127.0.0.1', port: port! }, 'me', 'wrong', 10, 200, 5_000);
    expect(bad).toMatchObject({ ok: false });
  });
});
