/**
 * Elastic training across the 4-host namespace cluster (test/cluster: real sshd per host), driven
 * by a host discovery script that prints a file the test edits: a host removed from its output has
 * its ranks stopped while training goes on, and when it comes back its new ranks join at the next
 * commit and the world grows back, with identical weights everywhere at the end. And a host whose
 * link is cut: its ranks are given up after --elastic-timeout, the others finish. Needs root,
 * iproute2 and openssh-server; in CI it must run, elsewhere it is skipped, saying why.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown, clusterUp, describeLeftovers, HOSTS, leftovers, skipCluster, type Cluster } from './cluster/cluster.js';
import { waitUntil, linesOf, startElasticJob, type ElasticRun } from './helpers/processes.js';

const NODE = process.execPath;
const SETTINGS = ['--json', '--batch', '64', '--commit-every', '5'];
// The collective timeout (--timeout) bounds how long ranks next to a cut link wait before they give up.
const TIMEOUT = ['--timeout', '5'];
const describeRun = (run: ElasticRun): string => `exit ${run.code}, ${run.wallMs} ms:\n${run.output.slice(-8000)}`;
const results = (run: ElasticRun) => linesOf(run, 'RESULT');

describe.skipIf(skipCluster())('elastic training on a 4-host cluster', () => {
  let cluster: Cluster | undefined;
  beforeAll(() => {
    cluster = clusterUp();
  });
  afterAll(() => clusterDown(cluster));

  it('a host leaves the discovery output (its ranks stop, training goes on) and comes back (the world grows back, weights identical)', async () => {
    const c = cluster!;
    const hostsFile = path.join(c.dir, 'elastic-hosts.txt');
    const script = path.join(c.dir, 'discover.sh');
    writeFileSync(script, `#!/bin/sh\ncat ${hostsFile}\n`, { mode: 0o755 });
    const both = `${HOSTS[0]}:2\n${HOSTS[1]}:2\n`;
    writeFileSync(hostsFile, both);
    const job = startElasticJob(
      ['--host-discovery-script', script, '--discovery-interval', '1', '-np', '4', '--min-np', '2', '--elastic-timeout', '20', ...TIMEOUT, ...c.sshArgs],
      [NODE, 'examples/mnist-elastic.mjs', ...SETTINGS, '--epochs', '3'],
    );
    await job.waitFor((l) => l.kind === 'STEP' && Number(l.data.step) >= 4);
    const removedAt = Date.now();
    writeFileSync(hostsFile, `${HOSTS[0]}:2\n`);
    const shrunk = await job.waitFor((l) => l.kind === 'RESET' && l.data.size === 2);
    writeFileSync(hostsFile, both);
    const grown = await job.waitFor((l) => l.kind === 'RESET' && l.data.size === 4);
    const run = await job.done;
    const d = describeRun(run);
    expect(shrunk, d).toBeDefined();
    expect(grown, d).toBeDefined();
    expect(run.code, d).toBe(0);
    expect(run.output, d).toMatch(new RegExp(`worker [23] stopped: ${HOSTS[1]!.replace(/\./g, '\\.')} left the host discovery script's output`));
    expect(run.output, d).toMatch(new RegExp(`starting worker 4 on ${HOSTS[1]!.replace(/\./g, '\\.')}`));
    expect(run.output, d).toMatch(/waits to join; the ranks take it in at their next commit\(\)/);
    const r = results(run);
    expect(r.length, d).toBe(4);
    expect(r.every((l) => l.data.size === 4), d).toBe(true);
    expect(new Set(r.map((l) => l.data.weights)).size, d).toBe(1);
    expect(r.map((l) => l.worker).sort(), d).toEqual([0, 1, 4, 5]);
    // Joining at a commit redoes nothing.
    expect(Number(grown!.data.redone), d).toBe(0);
    console.log(`elastic cluster: host removed -> world of 2 after ${shrunk!.at - removedAt} ms; grown back to 4; ${run.wallMs} ms in all`);
    expect(await waitUntil(() => HOSTS.every((_, i) => leftovers(c, i).length === 0), 10_000), describeLeftovers(c)).toBe(true);
  }, 240_000);

  it('a host whose link is cut: its ranks are given up after --elastic-timeout, the others finish', async () => {
    const c = cluster!;
    const job = startElasticJob(
      ['-H', `${HOSTS[0]}:2,${HOSTS[1]}:2`, '-np', '4', '--min-np', '2', '--elastic-timeout', '8', ...TIMEOUT, ...c.sshArgs],
      [NODE, 'examples/mnist-elastic.mjs', ...SETTINGS, '--epochs', '2'],
    );
    await job.waitFor((l) => l.kind === 'STEP' && Number(l.data.step) >= 4);
    const cutAt = Date.now();
    execFileSync('ip', ['netns', 'exec', 'rtl-sw', 'ip', 'link', 'set', 'rtl-s1', 'down']);
    let formed;
    try {
      formed = await job.waitFor((l) => l.kind === 'RESET' && l.data.size === 2);
    } finally {
      execFileSync('ip', ['netns', 'exec', 'rtl-sw', 'ip', 'link', 'set', 'rtl-s1', 'up']);
    }
    const run = await job.done;
    const d = describeRun(run);
    expect(formed, d).toBeDefined();
    expect(run.code, d).toBe(0);
    expect(run.output, d).toMatch(/worker [23] on 10\.78\.0\.2 did not leave generation 0 within the elastic timeout \(--elastic-timeout\) \(hung, or cut off from the others\); stopping it/);
    const r = results(run);
    expect(r.length, d).toBe(2);
    expect(new Set(r.map((l) => l.data.weights)).size, d).toBe(1);
    console.log(`elastic cluster: link cut -> training again on 2 ranks after ${formed!.at - cutAt} ms (collective timeout 5 s + --elastic-timeout 8 s)`);
    // The cut-off ranks end too once the link is back (their ssh session, or their own deadline).
    expect(await waitUntil(() => HOSTS.every((_, i) => leftovers(c, i).length === 0), 30_000), describeLeftovers(c)).toBe(true);
  }, 240_000);
});
