/**
 * The ringtrain launcher with ranks on this machine: real processes, real rendezvous, real signals.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, runCli, startCli, tagged, waitUntil, type LauncherRankReport as Report } from './helpers/processes.js';

const RANK = 'test/fixtures/launcher-rank.mjs';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rtl-local-'));
const aFile = path.join(tmp, 'a-file');
writeFileSync(aFile, 'not a directory\n');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('launcher, local ranks', () => {
  it('starts -np ranks with the full rank contract, serves their rendezvous, and exits 0 with a summary', async () => {
    const run = await runCli(['-np', '3', '--timeout', '7', '--port-range', '47200-47260', '-x', 'RT_TEST_EXPORT=a b', '--', 'node', RANK], {
      env: { ...process.env, RANK: '9', WORLD_SIZE: '99', RINGTRAIN_STALL_WARNING_MS: '4321' },
    });
    expect(run.stderr).toMatch(/^ringtrain: 3 rank\(s\) on 1 host\(s\) finished in \d+\.\ds$/m);
    expect(run.code).toBe(0);
    const reports = tagged<Report>(run.stdout, 'REPORT');
    expect([...reports.keys()].sort()).toEqual([0, 1, 2]);
    for (const [rank, r] of reports) {
      expect(r).toMatchObject({ rank, size: 3, localRank: rank, localSize: 3, timeoutMs: 7000, portRange: [47200, 47260], exported: 'a b' });
      expect(r.addr.host).toBe('127.0.0.1');
      expect(r.addr.port).toBeGreaterThanOrEqual(47200);
      expect(r.addr.port).toBeLessThanOrEqual(47260);
      expect(r.tokenLength).toBe(64);
      expect(r.tokenInCmdline).toBe(false);
      expect(r.tableHosts).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
      expect(r.cwd).toBe(process.cwd());
      expect(r.stdinIsDevNull).toBe(true);
    }
  });

  it('every spelling of this machine is one host: local ranks 0..n-1 of n in rank order, one host in the summary', async () => {
    const file = path.join(tmp, 'aliases.txt');
    writeFileSync(file, `localhost slots=2\n127.0.0.1:1\n${os.hostname()}\n[::1]\n`);
    const run = await runCli(['--hosts', file, '--', 'node', RANK]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^ringtrain: 5 rank\(s\) on 1 host\(s\) finished in /m);
    const reports = tagged<Report>(run.stdout, 'REPORT');
    expect([...reports.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    for (const [rank, r] of reports) {
      expect([r.localRank, r.localSize]).toEqual([rank, 5]);
      expect(new Set(r.tableHostIds).size).toBe(1);
    }
  });

  it("-H '[::1]:2' serves and advertises on ::1, and the real core all-reduces over it", async () => {
    const run = await runCli(['-H', '[::1]:2', '--', 'node', 'test/fixtures/launcher-allreduce.mjs']);
    expect(run.code, run.stderr).toBe(0);
    const results = tagged<{ wrong: number; peers: string[]; rendezvous: string; localRank: number; localSize: number }>(run.stdout, 'RESULT');
    expect(results.size).toBe(2);
    for (const [rank, r] of results) {
      expect(r.wrong).toBe(0);
      expect(r.peers).toEqual(['::1', '::1']);
      expect(r.rendezvous).toMatch(/^\[::1\]:\d+$/);
      expect([r.localRank, r.localSize]).toEqual([rank, 2]);
    }
  });

  it('passes other RINGTRAIN_* settings of its environment on, and keeps its own contract', async () => {
    const script = path.join(tmp, 'env.mjs');
    writeFileSync(script, "console.log('ENV ' + JSON.stringify({ stall: process.env.RINGTRAIN_STALL_WARNING_MS, rank: process.env.RINGTRAIN_RANK, launcher: process.env.RINGTRAIN_LAUNCHER, foreign: process.env.OMPI_COMM_WORLD_RANK ?? null }));\n");
    const run = await runCli(['-np', '2', '--', 'node', script], {
      env: { ...process.env, RINGTRAIN_STALL_WARNING_MS: '4321', RINGTRAIN_RANK: '5', OMPI_COMM_WORLD_RANK: '3' },
    });
    expect(run.code).toBe(0);
    const env = tagged(run.stdout, 'ENV');
    expect(env.get(0)).toEqual({ stall: '4321', rank: '0', launcher: '1', foreign: null });
    expect(env.get(1)).toEqual({ stall: '4321', rank: '1', launcher: '1', foreign: null });
  });

  it('relays every line whole, prefixed with its rank, stderr on stderr, never mixed mid-line', async () => {
    const lines = 400;
    const run = await runCli(['-np', '4', '--', 'node', 'test/fixtures/launcher-chatter.mjs', String(lines)]);
    expect(run.code).toBe(0);
    for (const [stream, kind] of [
      [run.stdout, 'out'],
      [run.stderr, 'err'],
    ] as const) {
      const next = [0, 0, 0, 0];
      for (const line of stream.split('\n')) {
        if (line === '' || line.startsWith('ringtrain: ')) continue;
        const m = /^\[(\d)\] (out|err) (\d) (\d+) (é{20})(\d{200})ß$/.exec(line);
        expect(m, `mangled ${kind} line: ${line.slice(0, 120)}`).not.toBeNull();
        const [, prefix, k, rank, i, , digits] = m!;
        expect(k).toBe(kind);
        expect(rank).toBe(prefix);
        expect(Number(i)).toBe(next[Number(rank)]);
        expect(digits).toBe(String(Number(i) % 10).repeat(200));
        next[Number(rank)]!++;
      }
      expect(next).toEqual([lines, lines, lines, lines]);
    }
  });

  it('--no-tag-output relays raw lines; --output-dir keeps one log per rank', async () => {
    const dir = path.join(tmp, 'logs');
    const run = await runCli(['-np', '2', '--no-tag-output', '--output-dir', dir, '--', 'node', 'test/fixtures/launcher-chatter.mjs', '3']);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').filter((l) => l.startsWith('out ')).length).toBe(6);
    expect(run.stdout).not.toMatch(/^\[/m);
    expect(readdirSync(dir).sort()).toEqual(['rank.0.log', 'rank.1.log']);
    const log = readFileSync(path.join(dir, 'rank.1.log'), 'utf8');
    expect(log.split('\n').filter((l) => l.startsWith('out 1 ')).length).toBe(3);
    expect(log.split('\n').filter((l) => l.startsWith('err 1 ')).length).toBe(3);
    expect(log).not.toContain('ringtrain-started');
  });

  it('a rank exiting 3 stops the others within seconds; the launcher names it and exits 3', async () => {
    const running = startCli(['-np', '3', '--', 'node', RANK, '--fail', '1:3']);
    const run = await running.done;
    expect(run.stderr).toMatch(/ringtrain: rank 1 on localhost exited with code 3; stopping the remaining 2 rank\(s\)/);
    expect(run.code).toBe(3);
    expect(run.ms).toBeLessThan(10_000);
    const pids = [...tagged<Report>(run.stdout, 'REPORT').values()].map((r) => r.pid);
    expect(pids).toHaveLength(3);
    expect(await waitUntil(() => pids.every((p) => !alive(p)), 3_000)).toBe(true);
  });

  it('a rank killed by a signal is reported by signal name, exit code 128+N', async () => {
    const run = await runCli(['-np', '2', '--', 'node', RANK, '--die', '0:SIGSEGV']);
    expect(run.stderr).toMatch(/rank 0 on localhost was killed by SIGSEGV \(exit code 139\)/);
    expect(run.code).toBe(139);
  });

  it('SIGINT to the launcher stops every rank and exits 130', async () => {
    const running = startCli(['-np', '3', '--', 'node', RANK, '--hold']);
    await running.waitForLines(/^\[\d\] READY \d$/, 3, 20_000);
    const pids = [...tagged<Report>(running.stdout(), 'REPORT').values()].map((r) => r.pid);
    const t = Date.now();
    running.child.kill('SIGINT');
    const run = await running.done;
    expect(run.stderr).toContain('ringtrain: got SIGINT; stopping the remaining 3 rank(s)');
    expect(run.stderr).toMatch(/stopped by SIGINT after/);
    expect(run.code).toBe(130);
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(pids.every((p) => !alive(p))).toBe(true);
  });

  it('even a launcher killed with SIGKILL leaves no rank behind', async () => {
    const running = startCli(['-np', '2', '--', 'node', RANK, '--hold']);
    await running.waitForLines(/^\[\d\] READY \d$/, 2, 20_000);
    const pids = [...tagged<Report>(running.stdout(), 'REPORT').values()].map((r) => r.pid);
    running.child.kill('SIGKILL');
    await running.done;
    expect(await waitUntil(() => pids.every((p) => !alive(p)), 5_000)).toBe(true);
  });

  it('names the ranks that did not join by --start-timeout, and stops the job', async () => {
    const run = await runCli(['-np', '3', '--start-timeout', '1.5', '--', 'node', RANK, '--skip-join', '2']);
    expect(run.stderr).toContain(
      'ringtrain: 1 of 3 rank(s) did not join the rendezvous within the start timeout (1.5s): 2 on localhost (running); ' +
        'stopping the remaining 3 rank(s). Does the command call init()? Raise --start-timeout if startup is slow.\n',
    );
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(10_000);
  });

  it('a command that does not exist fails clearly with 127', async () => {
    const run = await runCli(['-np', '2', '--', 'ringtrain-no-such-command']);
    expect(run.stderr).toMatch(/rank \d on localhost exited with code 127: command not found on localhost/);
    expect(run.code).toBe(127);
  });

  it('serves an exact all-reduce across local ranks (the real core)', async () => {
    const run = await runCli(['-np', '3', '--', 'node', 'test/fixtures/launcher-allreduce.mjs']);
    expect(run.code, run.stderr).toBe(0);
    const results = tagged<{ wrong: number; size: number; gathered: number[] }>(run.stdout, 'RESULT');
    expect(results.size).toBe(3);
    for (const r of results.values()) {
      expect(r.wrong).toBe(0);
      expect(r.gathered).toEqual([0, 1, 2]);
    }
  });

  it('bench runs dist/bench-cli.js on every slot (or says it is not built)', async () => {
    const bench = path.resolve('dist/bench-cli.js');
    const args = ['-b', '8', '-e', '8', '-n', '1', '-w', '0', '--min-time-ms', '0', '--startup-warmup-ms', '0'];
    const run = await runCli(['-np', '2', '-v', 'bench', ...args]);
    if (existsSync(bench)) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`rank 0 on localhost (local): env`);
      expect(run.stderr).toContain(`RINGTRAIN_LAUNCHER=1 node ${bench} ${args.join(' ')}`);
      expect(run.stderr).toContain(`rank 1 on localhost (local): env`);
    } else {
      expect(run.stderr).toContain(`bench: ${bench} is missing`);
      expect(run.code).toBe(2);
    }
  });

  it('bench --help prints the help once, without starting ranks', async () => {
    const run = await runCli(['-np', '3', 'bench', '--help']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n').filter((l) => l.includes('The benchmark suite: collectives nccl-tests style'))).toHaveLength(1);
    expect(run.stdout).not.toMatch(/^\[\d\]/m);
    expect(run.stderr).not.toContain('rank(s)');
  });
});

describe('launcher command line', () => {
  it.each([
    [[], 'no command given'],
    [['-np', '2'], 'no command given'],
    [['-np', '0', '--', 'true'], "-np must be a whole number >= 1, got '0'"],
    [['-np', 'abc', '--', 'true'], "-np must be a whole number >= 1, got 'abc'"],
    [['-np', '2.5', '--', 'true'], "-np must be a whole number >= 1, got '2.5'"],
    [['--timeout', 'soon', '--', 'true'], "--timeout must be a number > 0, got 'soon'"],
    [['--ssh-port', '70000', '--', 'true'], "--ssh-port must be a whole number 1..65535, got '70000'"],
    [['--output-dir', aFile, '--', 'true'], `--output-dir ${aFile}: exists and is not a directory`],
    [['--output-dir', path.join(aFile, 'logs'), '--', 'true'], `--output-dir ${path.join(aFile, 'logs')}: cannot create or write it (a part of the path is a file)`],
    [['-np', '2', '--port-range', '29500-29500', '--', 'true'],
      "--port-range 29500-29500 has 1 port(s), too few for this job: localhost needs 3 (one ring listener for each of its 2 rank(s), and one for the launcher's rendezvous); give a range of at least 3 ports"],
    [['-H', 'a:2,b', '-np', '4', '--', 'true'], '-np 4 is more than the 3 slot(s) in -H a:2,b (a:2, b:1)'],
    [['--port-range', '9-3', '--', 'true'], '--port-range: expected a port range A-B'],
    [['-x', '1BAD=2', '--', 'true'], "-x 1BAD=2: '1BAD' is not a valid environment variable name"],
    [['-x', 'RT_SURELY_UNSET_VAR', '--', 'true'], 'RT_SURELY_UNSET_VAR is not set'],
    [['--hosts', 'x', '-H', 'a', '--', 'true'], 'mutually exclusive'],
    [['--no-such-option', '--', 'true'], 'Unknown argument'],
    [['--hosts', '/nonexistent/hosts.txt', '--', 'true'], '/nonexistent/hosts.txt: cannot read the hostfile (ENOENT)'],
    [['--start-timeout', '-1', '--', 'true'], '--start-timeout must be a number >= 0'],
  ])('%j is refused with exit 2 and says why', async (args, message) => {
    const run = await runCli(args);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(2);
  });

  it('a bad hostfile line is refused naming the file and line', async () => {
    const file = path.join(tmp, 'bad-hosts.txt');
    writeFileSync(file, 'good slots=2\n# fine\nbad slots=many\n');
    const run = await runCli(['--hosts', file, '--', 'true']);
    expect(run.stderr).toContain(`${file}:3: slots must be a whole number >= 1, got 'many'`);
    expect(run.code).toBe(2);
  });

  it('a host that cannot be resolved is named with its hostfile line', async () => {
    const file = path.join(tmp, 'unknown-host.txt');
    writeFileSync(file, 'localhost slots=1\nno-such-host.invalid slots=2\n');
    const run = await runCli(['--hosts', file, '--', 'true']);
    expect(run.stderr).toContain("cannot resolve host 'no-such-host.invalid'");
    expect(run.stderr).toContain(`(named in ${file}:2)`);
    expect(run.code).toBe(2);
  });

  it('--help shows usage and examples', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] -- <command> [args...]');
    expect(run.stdout).toContain('Examples:');
    expect(run.stdout).toContain('--ssh-identity-file');
  });

  it('accepts a command without -- (mpirun style) and -np=N', async () => {
    const run = await runCli(['-np=2', 'node', '-e', 'console.log("hi " + process.env.RINGTRAIN_RANK)']);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').sort()).toEqual(['', '[0] hi 0', '[1] hi 1']);
  });
});
