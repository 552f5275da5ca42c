/**
 * Runs scripts/fuzz.sh: each libFuzzer target (control stream parser, wire decoders, the ring
 * listener's handshake acceptor over real sockets) for FUZZ_SECONDS (default 20) under ASan and
 * UBSan. Fails on any crash or broken invariant. Needs clang with libFuzzer (under CI=true as root
 * the script installs it from Debian); elsewhere, without it, the test is skipped saying why.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

describe('fuzzing the parsers and the handshake (bounded time)', () => {
  it('every fuzz target runs its time without a crash', (ctx) => {
    const seconds = Number(process.env.FUZZ_SECONDS ?? 20);
    const run = spawnSync('bash', [path.join(ROOT, 'scripts/fuzz.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FUZZ_SECONDS: String(seconds) },
      // Build (up to a few minutes on a fresh clone) plus the targets, two at a time.
      timeout: 300_000 + seconds * 3 * 1000,
    });
    // fuzz.sh exits 2 when clang with libFuzzer is missing; under CI=true that is a failure below.
    if (run.status === 2 && process.env.CI !== 'true') ctx.skip(`the fuzz run cannot start: ${run.stdout.trim().split('\n').pop()}`);
    const table = run.stdout.slice(run.stdout.indexOf('target '));
    console.log(`fuzz results (${seconds}s per target):\n${table}`);
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^fuzz: 3 passed, 0 failed$/m);
    // Every target really ran: a non-trivial number of inputs each.
    const execs = [...run.stdout.matchAll(/^(fuzz_\w+)\s+\d+\s+(\d+)\s/gm)].map((m) => [m[1], Number(m[2])] as const);
    expect(execs.map(([t]) => t).sort()).toEqual(['fuzz_control_parser', 'fuzz_handshake', 'fuzz_wire_decode']);
    for (const [target, n] of execs) expect(n, `${target} ran too few inputs`).toBeGreaterThan(100);
  }, 600_000);
});
