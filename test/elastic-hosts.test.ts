/**
 * Host discovery on this machine (no namespaces needed): the launcher runs the script every
 * second; a host that gains a slot gets a worker that joins the running world at its next commit;
 * a host whose workers keep failing is put aside after HOST_FAILURE_LIMIT failures; a script that
 * starts failing or printing garbage is reported and its previous answer kept.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { linesOf, startElasticJob, type ElasticRun } from './helpers/processes.js';

const LOOP = ['node', 'test/fixtures/elastic-loop.mjs'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'rt-elastic-hosts-'));
const describeRun = (run: ElasticRun): string => `exit ${run.code}, ${run.wallMs} ms:\n${run.output.slice(-6000)}`;

function discovery(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('elastic host discovery on one machine', () => {
  it('a host that gains a slot gets a worker, which joins at the next commit: the world grows to --max-np', async () => {
    const hosts = path.join(dir, 'grow.txt');
    writeFileSync(hosts, 'localhost:2\n');
    const script = discovery('grow.sh', `cat ${hosts}`);
    const job = startElasticJob(
      ['--host-discovery-script', script, '--discovery-interval', '1', '-np', '2', '--min-np', '1', '--max-np', '3'],
      LOOP,
      { STEPS: '120', STEP_MS: '60' },
      120_000,
    );
    await job.waitFor((l) => l.kind === 'STEP' && Number(l.data.step) >= 5);
    writeFileSync(hosts, 'localhost:3\n');
    const run = await job.done;
    const d = describeRun(run);
    expect(run.code, d).toBe(0);
    expect(run.output, d).toMatch(/elastic: starting worker 2 on localhost \(slot 2\)/);
    expect(run.output, d).toMatch(/worker 2 on localhost waits to join; the ranks take it in at their next commit\(\)/);
    const results = linesOf(run, 'RESULT');
    expect(results.map((l) => l.worker).sort(), d).toEqual([0, 1, 2]);
    expect(results.every((l) => l.data.size === 3), d).toBe(true);
    // Every rank ends with the same committed field, the joiner too.
    expect(new Set(results.map((l) => l.data.sum)).size, d).toBe(1);
    expect(results.every((l) => l.data.steps === 120), d).toBe(true);
  }, 120_000);

  it('a host whose workers keep failing is put aside after 3 failures; the job goes on and finishes', async () => {
    const script = discovery('fixed.sh', 'echo localhost:3');
    const run = await startElasticJob(
      ['--host-discovery-script', script, '--discovery-interval', '1', '-np', '2', '--min-np', '1', '--max-np', '3'],
      LOOP,
      { STEPS: '150', STEP_MS: '60', FAIL_FROM_WORKER: '2' },
      120_000,
    ).done;
    const d = describeRun(run);
    expect(run.code, d).toBe(0);
    expect(run.output, d).toMatch(/elastic: localhost is put aside for the rest of the job: 3 of its workers failed \(limit 3\); no new workers start there/);
    expect(run.output.match(/elastic: starting worker \d+ on localhost/g)?.length, d).toBe(3);
    expect(linesOf(run, 'RESULT').length, d).toBe(2);
  }, 120_000);

  it('a discovery script that starts failing, then prints garbage, is reported once each and its previous answer kept', async () => {
    const count = path.join(dir, 'count');
    writeFileSync(count, '0');
    const script = discovery(
      'flaky.sh',
      `n=$(cat ${count}); echo $((n+1)) > ${count}; if [ "$n" -lt 1 ]; then echo localhost:2; elif [ "$n" -lt 3 ]; then echo "cloud API down" >&2; exit 1; else echo "not a host:list"; fi`,
    );
    const run = await startElasticJob(
      ['--host-discovery-script', script, '--discovery-interval', '1', '-np', '2', '--min-np', '1'],
      LOOP,
      { STEPS: '120', STEP_MS: '60' },
      120_000,
    ).done;
    const d = describeRun(run);
    expect(run.code, d).toBe(0);
    expect(run.output.match(/exited with code 1: cloud API down; keeping its previous answer/g)?.length, d).toBe(1);
    expect(run.output.match(/printed something that is not a host list .*; keeping its previous answer/g)?.length, d).toBe(1);
    expect(linesOf(run, 'RESULT').length, d).toBe(2);
  }, 120_000);
});
