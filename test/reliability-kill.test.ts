/**
 * kill -9 of one rank at a random moment during a stream of all-reduces (4 ranks, random victim,
 * moment and sizes; small sizes take the recursive-doubling path, large ones the ring). Every other
 * rank must exit non-zero within RINGTRAIN_TIMEOUT_MS + 2 s, its error naming the dead rank (and
 * its address), with no wrong result before that. Prints a tally line for the reviewer.
 *
 * RELIABILITY_KILL_TRIALS (default 20) and RELIABILITY_SEED (default: random, printed) reproduce a run.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { describeRuns, errorOf, startJob, type RankRun } from './helpers/processes.js';
import { mulberry32 } from './helpers/mulberry32.mjs';

const TRIALS = Number(process.env.RELIABILITY_KILL_TRIALS ?? 20);
const SEED = Number(process.env.RELIABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TIMEOUT_MS = 3000;
const BOUND_MS = TIMEOUT_MS + 2000;
const SIZE = 4;
// Element counts per trial: small only, mixed, large only.
const PROFILES = ['1,7,1000,4096', '1,1000,65536,300001', '262144,1048577'];


interface Trial {
  index: number;
  victim: number;
  delayMs: number;
  sizes: string;
  seed: number;
}

interface TrialOutcome {
  trial: Trial;
  runs: RankRun[];
  killAt: number;
  /** Per survivor: ms from the kill to its exit. */
  latency: Map<number, number>;
  hangs: number;
  wrong: number;
  misnamed: number;
  zeroExit: number;
  messages: string[];
}

async function runTrial(trial: Trial): Promise<TrialOutcome> {
  const job = await startJob({
    size: SIZE,
    args: ['stream'],
    env: { RINGTRAIN_TIMEOUT_MS: String(TIMEOUT_MS), SIZES: trial.sizes, SEED: String(trial.seed) },
    killAfterMs: 40_000,
  });
  await job.allReady;
  await new Promise((r) => setTimeout(r, trial.delayMs));
  const killAt = job.kill(trial.victim, 'SIGKILL');
  const runs = await job.done;
  const outcome: TrialOutcome = { trial, runs, killAt, latency: new Map(), hangs: 0, wrong: 0, misnamed: 0, zeroExit: 0, messages: [] };
  const names = new RegExp(`rank ${trial.victim} \\([^)]*127\\.0\\.0\\.1:\\d+\\)`);
  for (const r of runs) {
    if (r.rank === trial.victim) continue;
    const latency = r.exitAt! - killAt;
    outcome.latency.set(r.rank, latency);
    if (r.hung || latency > BOUND_MS) outcome.hangs++;
    if (r.code === 0) outcome.zeroExit++;
    outcome.wrong += Number(r.json?.wrong ?? 0);
    const e = errorOf(r);
    if (!e || !names.test(e.message)) outcome.misnamed++;
    if (e) outcome.messages.push(`${e.code}: ${e.message}`);
  }
  return outcome;
}

describe('kill -9 of one rank during a stream of all-reduces', () => {
  let outcomes: TrialOutcome[] = [];
  const sum = (f: (o: TrialOutcome) => number): number => outcomes.reduce((s, o) => s + f(o), 0);
  const detailOf = (bad: TrialOutcome[]): string =>
    bad.map((o) => `trial ${o.trial.index} ${JSON.stringify(o.trial)} latency ${JSON.stringify([...o.latency])}\n${describeRuns(o.runs)}`).join('\n=====\n');

  beforeAll(async () => {
    const next = mulberry32(SEED);
    const trials: Trial[] = Array.from({ length: TRIALS }, (_, index) => ({
      index,
      victim: Math.floor(next() * SIZE),
      delayMs: Math.floor(next() * 1500),
      sizes: PROFILES[Math.floor(next() * PROFILES.length)]!,
      seed: Math.floor(next() * 1e9),
    }));
    // Two jobs at a time: ranks mostly wait on sockets, and the bound is on detection, not speed.
    const queue = [...trials];
    const done: TrialOutcome[] = [];
    await Promise.all(
      [0, 1].map(async () => {
        for (let t = queue.shift(); t; t = queue.shift()) done.push(await runTrial(t));
      }),
    );
    outcomes = done.sort((a, b) => a.trial.index - b.trial.index);

    const latencies = outcomes.flatMap((o) => [...o.latency.values()]).sort((a, b) => a - b);
    const tally = {
      trials: outcomes.length,
      survivors: latencies.length,
      hangs: sum((o) => o.hangs),
      wrongResults: sum((o) => o.wrong),
      misnamed: sum((o) => o.misnamed),
      zeroExit: sum((o) => o.zeroExit),
      callsBeforeKill: sum((o) => o.runs.reduce((s, r) => s + Number(r.json?.calls ?? 0), 0)),
      medianDetectMs: latencies[Math.floor(latencies.length / 2)],
      maxDetectMs: latencies[latencies.length - 1],
      boundMs: BOUND_MS,
      seed: SEED,
    };
    console.log(`kill -9 tally: ${JSON.stringify(tally)}`);
    const kinds = new Map<string, number>();
    for (const o of outcomes) {
      for (const m of o.messages) {
        const k = m.replace(/\d+/g, 'N');
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
    }
    console.log(`kill -9 messages seen (digits as N):\n${[...kinds].map(([k, n]) => `  ${n} x ${k}`).join('\n')}`);
  }, 300_000);

  it(`${TRIALS} random trials on 4 ranks ran, each victim killed mid-stream`, () => {
    expect(outcomes.length).toBe(TRIALS);
    expect(sum((o) => o.latency.size)).toBe(TRIALS * (SIZE - 1));
    for (const o of outcomes) {
      const victim = o.runs.find((r) => r.rank === o.trial.victim)!;
      expect(victim.signal, `trial ${o.trial.index}: the victim was not killed mid-stream`).toBe('SIGKILL');
    }
  });

  it('no hang: every survivor exits non-zero within timeout + 2 s of the kill', () => {
    const bad = outcomes.filter((o) => o.hangs || o.zeroExit);
    expect({ hangs: sum((o) => o.hangs), zeroExit: sum((o) => o.zeroExit) }, detailOf(bad)).toEqual({ hangs: 0, zeroExit: 0 });
  });

  it('no wrong result: every all-reduce that completed before the kill was exact', () => {
    const bad = outcomes.filter((o) => o.wrong);
    expect(sum((o) => o.wrong), detailOf(bad)).toBe(0);
    // Not vacuous: the survivors checked calls before the kill.
    const checked = sum((o) => o.runs.filter((r) => r.rank !== o.trial.victim).reduce((s, r) => s + Number(r.json?.calls ?? 0), 0));
    expect(checked).toBeGreaterThan(0);
  });

  it("every survivor's error names the dead rank and its address", () => {
    const bad = outcomes.filter((o) => o.misnamed);
    expect(sum((o) => o.misnamed), detailOf(bad)).toBe(0);
  });
});
