/**
 * Elastic training through the real launcher: examples/mnist-elastic.mjs on 4 local ranks with
 * --min-np 2 and fixed settings. kill -9 of a random rank at a random step (ELASTIC_KILL_TRIALS,
 * default 10, 2 under CI; RELIABILITY_SEED reproduces a run): every trial must finish with exit 0
 * on 3 ranks with identical final weights, test accuracy within 1 point of the mean of 3
 * undisturbed runs, no more steps redone than the commit interval, and tf.memory() as flat as an
 * undisturbed run's. Then: two ranks killed at once, a rank killed during the re-formation (while
 * the survivors gather, and while the new world forms), a rank killed during commit() (while it
 * snapshots, and while the ranks confirm), all ranks but one killed, a graceful leave below
 * --min-np, and the command-line checks. Prints a tally and the time from a death to training again.
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { linesOf, startElasticJob, type ElasticRun, type Line, ROOT } from './helpers/processes.js';
import { mulberry32 } from './helpers/mulberry32.mjs';

const CI = process.env.CI === 'true';
const TRIALS = Number(process.env.ELASTIC_KILL_TRIALS ?? (CI ? 2 : 10));
const SEED = Number(process.env.RELIABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COMMIT_EVERY = 5;
const NP = 4;
const ELASTIC_TIMEOUT_S = 20;
const SETTINGS = ['--json', '--batch', '64', '--commit-every', String(COMMIT_EVERY)];
const EXAMPLE = ['node', 'examples/mnist-elastic.mjs'];
const FAULTS = ['node', 'test/fixtures/elastic-faults.mjs'];
const LAUNCH = ['-np', String(NP), '--min-np', '2', '--elastic-timeout', String(ELASTIC_TIMEOUT_S), '--timeout', '30'];
const ENV = {};

interface Outcome {
  name: string;
  run: ElasticRun;
  killAt: number | undefined;
  victims: number[];
}

const results = (run: ElasticRun): Line[] => linesOf(run, 'RESULT');
const hashes = (run: ElasticRun): Set<unknown> => new Set(results(run).map((l) => l.data.weights));
const maxRedone = (run: ElasticRun): number => Math.max(0, ...linesOf(run, 'RESET').map((l) => Number(l.data.redone)));
/** ms from the kill to the last survivor's first finished step after it. */
function backToTraining(o: Outcome): number | undefined {
  if (o.killAt === undefined) return undefined;
  const firsts = new Map<number, number>();
  for (const l of linesOf(o.run, 'RESUMED')) if (!firsts.has(l.worker!)) firsts.set(l.worker!, Number(l.data.t));
  if (firsts.size === 0) return undefined;
  return Math.max(...firsts.values()) - o.killAt;
}
const describeRun = (o: Outcome): string => `${o.name} (victims ${o.victims.join(',')}), exit ${o.run.code}, ${o.run.wallMs} ms:\n${o.run.output.slice(-6000)}`;

async function undisturbed(i: number, epochs: string): Promise<Outcome> {
  const job = startElasticJob(LAUNCH, [...EXAMPLE, ...SETTINGS, '--epochs', epochs], ENV);
  return { name: `undisturbed ${i}`, run: await job.done, killAt: undefined, victims: [] };
}

/** Kills `victims` once the first of them has finished step `atStep`. */
async function killAtStep(name: string, victims: number[], atStep: number, epochs: string): Promise<Outcome> {
  const job = startElasticJob(LAUNCH, [...EXAMPLE, ...SETTINGS, '--epochs', epochs], ENV);
  const seen = await job.waitFor((l) => l.kind === 'STEP' && l.worker === victims[0] && Number(l.data.step) >= atStep);
  const killAt = seen ? Math.min(...victims.map((v) => job.kill(v))) : undefined;
  return { name, run: await job.done, killAt, victims };
}

/** Kills `first` at `atStep`, then `second` as soon as the launcher prints a line matching `when`. */
async function killDuringReform(name: string, first: number, second: number, atStep: number, when: RegExp): Promise<Outcome> {
  const job = startElasticJob(['-v', ...LAUNCH], [...EXAMPLE, ...SETTINGS, '--epochs', '1'], ENV);
  const seen = await job.waitFor((l) => l.kind === 'STEP' && l.worker === first && Number(l.data.step) >= atStep);
  const killAt = seen ? job.kill(first) : undefined;
  if (await job.waitFor((l) => l.kind === 'text' && when.test(l.text))) job.kill(second);
  return { name, run: await job.done, killAt, victims: [first, second] };
}

async function withFaults(name: string, launch: string[], env: Record<string, string>, victims: number[]): Promise<Outcome> {
  const job = startElasticJob(launch, [...FAULTS, ...SETTINGS, '--epochs', '1'], { ...ENV, ...env });
  return { name, run: await job.done, killAt: undefined, victims };
}

/** Runs the jobs two at a time: the ranks are CPU-bound and the machine has few cores. */
async function pool<T>(tasks: (() => Promise<T>)[], width = 2): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < tasks.length; i = next++) out[i] = await tasks[i]!();
    }),
  );
  return out;
}

describe('elastic MNIST on 4 local ranks, --min-np 2', () => {
  let baseline: Outcome[] = [];
  let trials: Outcome[] = [];
  const scenario = new Map<string, Outcome>();
  let baselineAccuracy = 0;
  let baselineTensors = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    const next = mulberry32(SEED);
    const pick = (n: number): number => Math.floor(next() * n);
    const two = (): [number, number] => {
      const a = pick(NP);
      return [a, (a + 1 + pick(NP - 1)) % NP];
    };
    const tasks: (() => Promise<Outcome>)[] = [];
    for (let i = 0; i < 3; i++) tasks.push(() => undisturbed(i, '2'));
    // 2 epochs of 33 steps at 4 ranks: kill somewhere in the first 60.
    for (let i = 0; i < TRIALS; i++) {
      const victim = pick(NP);
      const step = 1 + pick(60);
      tasks.push(() => killAtStep(`kill -9 trial ${i} (worker ${victim} at step ${step})`, [victim], step, '2'));
    }
    const [a, b] = two();
    const s1 = 2 + pick(20);
    const [c, d] = two();
    const [e, f] = two();
    const dieC = pick(NP);
    const dieD = pick(NP);
    const named: [string, () => Promise<Outcome>][] = [
      ['two at once', () => killAtStep('two at once', [a, b], s1, '1')],
      ['during gathering', () => killDuringReform('killed while the survivors gather', c, d, 2 + pick(20), /re-forming the world/)],
      ['during forming', () => killDuringReform('killed while the new world forms', e, f, 2 + pick(20), /elastic: generation 1: rank 0/)],
      ['commit snapshot', () => withFaults('killed as commit() snapshots', LAUNCH, { DIE_IN_COMMIT: `${dieC}:${2 + pick(4)}:snapshot` }, [dieC])],
      ['commit confirm', () => withFaults('killed while commit() confirms', LAUNCH, { DIE_IN_COMMIT: `${dieD}:${2 + pick(4)}:confirm` }, [dieD])],
      ['all but one', () => killAtStep('all but one', [0, 1, 2, 3].filter((w) => w !== 3 - (s1 % 4)), 3 + pick(10), '1')],
      [
        'graceful leave below min',
        () => withFaults('graceful leave below --min-np', ['-np', '2', '--min-np', '2', '--elastic-timeout', String(ELASTIC_TIMEOUT_S), '--timeout', '30'], { LEAVE_AT_COMMIT: '1:2' }, [1]),
      ],
    ];
    for (const [, task] of named) tasks.push(task);
    const done = await pool(tasks);
    baseline = done.slice(0, 3);
    trials = done.slice(3, 3 + TRIALS);
    named.forEach(([key], i) => scenario.set(key, done[3 + TRIALS + i]!));

    const accuracies = baseline.flatMap((o) => results(o.run).slice(0, 1).map((l) => Number(l.data.accuracy)));
    baselineAccuracy = accuracies.reduce((x, y) => x + y, 0) / Math.max(1, accuracies.length);
    baselineTensors = Number(results(baseline[0]!.run)[0]?.data.tensors ?? -1);
    const recoveries = trials.map(backToTraining).filter((x): x is number => x !== undefined).sort((x, y) => x - y);
    const restores = trials.flatMap((o) => linesOf(o.run, 'RESET').map((l) => Number(l.data.recoveryMs))).sort((x, y) => x - y);
    const trialAcc = trials.map((o) => Number(results(o.run)[0]?.data.accuracy ?? NaN));
    const tally = {
      trials: trials.length,
      exit0: trials.filter((o) => o.run.code === 0).length,
      threeRanksIdentical: trials.filter((o) => results(o.run).length === 3 && hashes(o.run).size === 1).length,
      baselineAccuracy: Number((baselineAccuracy * 100).toFixed(2)),
      baselineRuns: accuracies.map((x) => Number((x * 100).toFixed(2))),
      trialAccuracy: trialAcc.map((x) => Number((x * 100).toFixed(2))),
      maxAccuracyGapPts: Number((Math.max(...trialAcc.map((x) => Math.abs(x - baselineAccuracy))) * 100).toFixed(2)),
      maxStepsRedone: Math.max(0, ...trials.map((o) => maxRedone(o.run))),
      commitEvery: COMMIT_EVERY,
      deathToTrainingMs: { median: recoveries[Math.floor(recoveries.length / 2)], max: recoveries.at(-1) },
      failureToRestoredMs: { median: restores[Math.floor(restores.length / 2)], max: restores.at(-1) },
      seed: SEED,
      wallS: Math.round((Date.now() - t0) / 1000),
    };
    console.log(`elastic kill -9 tally: ${JSON.stringify(tally)}`);
    for (const [key, o] of scenario) {
      console.log(`elastic scenario '${key}': exit ${o.run.code}, ${results(o.run).length} result(s), ${hashes(o.run).size} distinct weights, ${o.run.wallMs} ms, back to training ${backToTraining(o) ?? '-'} ms`);
    }
  }, 1_500_000);

  it('undisturbed runs finish on 4 ranks with identical weights (and, seeded, the same weights every run)', () => {
    for (const o of baseline) {
      expect(o.run.code, describeRun(o)).toBe(0);
      expect(results(o.run).length, describeRun(o)).toBe(NP);
      expect(hashes(o.run).size, describeRun(o)).toBe(1);
      expect(results(o.run).every((l) => l.data.tensors === baselineTensors), describeRun(o)).toBe(true);
    }
    expect(new Set(baseline.flatMap((o) => [...hashes(o.run)])).size).toBe(1);
    expect(baselineAccuracy).toBeGreaterThan(0.85);
  });

  it(`kill -9 of a random rank at a random step: exit 0 on 3 ranks, identical weights, accuracy within 1 point, <= ${COMMIT_EVERY} steps redone`, () => {
    expect(trials.length).toBe(TRIALS);
    for (const o of trials) {
      const d = describeRun(o);
      expect(o.killAt, d).toBeDefined();
      expect(o.run.code, d).toBe(0);
      const r = results(o.run);
      expect(r.length, d).toBe(3);
      expect(r.every((l) => l.data.size === 3), d).toBe(true);
      expect(hashes(o.run).size, d).toBe(1);
      expect(Math.abs(Number(r[0]!.data.accuracy) - baselineAccuracy), d).toBeLessThanOrEqual(0.01);
      expect(maxRedone(o.run), d).toBeLessThanOrEqual(COMMIT_EVERY);
      // Snapshots and the failed step's tensors are freed: as many tensors as an undisturbed run.
      expect(r.every((l) => l.data.tensors === baselineTensors), d).toBe(true);
      expect(o.run.output, d).toMatch(/lost at [\d.]+s: worker \d on localhost \(rank \d of generation 0\): was killed by SIGKILL/);
    }
  });

  it('two ranks killed at once: the other two finish with identical weights', () => {
    const o = scenario.get('two at once')!;
    expect(o.run.code, describeRun(o)).toBe(0);
    expect(results(o.run).length, describeRun(o)).toBe(2);
    expect(hashes(o.run).size, describeRun(o)).toBe(1);
  });

  it('a rank killed during the re-formation (gathering, forming): the other two finish with identical weights', () => {
    for (const key of ['during gathering', 'during forming']) {
      const o = scenario.get(key)!;
      expect(o.run.code, describeRun(o)).toBe(0);
      expect(results(o.run).length, describeRun(o)).toBe(2);
      expect(hashes(o.run).size, describeRun(o)).toBe(1);
      expect(maxRedone(o.run), describeRun(o)).toBeLessThanOrEqual(COMMIT_EVERY);
    }
  });

  it('a rank killed during commit() (snapshot, confirm): the survivors share one commit and finish identical', () => {
    for (const key of ['commit snapshot', 'commit confirm']) {
      const o = scenario.get(key)!;
      expect(o.run.code, describeRun(o)).toBe(0);
      expect(results(o.run).length, describeRun(o)).toBe(3);
      expect(hashes(o.run).size, describeRun(o)).toBe(1);
      expect(maxRedone(o.run), describeRun(o)).toBeLessThanOrEqual(COMMIT_EVERY);
    }
  });

  it('all ranks but one killed: below --min-np the job fails at once, saying why', () => {
    const o = scenario.get('all but one')!;
    expect(o.run.hung, describeRun(o)).toBe(false);
    expect(o.run.code, describeRun(o)).toBe(1);
    expect(o.run.output, describeRun(o)).toMatch(/elastic: only 1 rank\(s\) left, below --min-np 2; stopping the job \(lost: /);
    expect(results(o.run).length).toBe(0);
  });

  it('a graceful leave that takes the world below --min-np fails the job, saying why', () => {
    const o = scenario.get('graceful leave below min')!;
    expect(o.run.hung, describeRun(o)).toBe(false);
    expect(o.run.code, describeRun(o)).toBe(1);
    expect(o.run.output, describeRun(o)).toMatch(/below --min-np 2.*left the job \(exited with code 0\)/);
  });
});

describe('elastic command line', () => {
  const cli = (args: string[]): { code: number | null; err: string } => {
    const r = spawnSync(process.execPath, ['dist/cli.js', ...args, '--', 'true'], { cwd: ROOT, encoding: 'utf8' });
    return { code: r.status, err: r.stderr };
  };
  it('checks --min-np <= -np <= --max-np before starting anything (exit 2)', () => {
    expect(cli(['-np', '4', '--min-np', '5'])).toMatchObject({ code: 2, err: expect.stringMatching(/--min-np <= -np <= --max-np, got --min-np 5, -np 4, --max-np 4/) });
    expect(cli(['-np', '4', '--min-np', '2', '--max-np', '3'])).toMatchObject({ code: 2, err: expect.stringMatching(/got --min-np 2, -np 4, --max-np 3/) });
    expect(cli(['-np', '4', '--max-np', '8'])).toMatchObject({ code: 2, err: expect.stringMatching(/--max-np needs --min-np/) });
    expect(cli(['-np', '4', '--min-np', '0'])).toMatchObject({ code: 2, err: expect.stringMatching(/--min-np must be a whole number >= 1, got '0'/) });
    expect(cli(['-np', '2', '--min-np', '1', '--elastic-timeout', '0'])).toMatchObject({ code: 2, err: expect.stringMatching(/--elastic-timeout must be a number > 0, got '0'/) });
  });
});
