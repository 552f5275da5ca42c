/**
 * Property tests of hostfile / -H parsing with a seeded random generator: any valid hostfile written
 * in any mix of the accepted syntaxes parses to the same hosts and slots; any garbage line either
 * parses or fails with an argument error naming that file and line, never another kind of
 * exception; pathological long lines finish fast (no regex backtracking blow-up).
 * RELIABILITY_SEED reproduces a run (it is printed).
 */
import { describe, expect, it } from 'vitest';
import { RingtrainError } from '../../dist/errors.js';
import { parseHostfile, parseHostList, type HostEntry } from '../../dist/launcher/hostfile.js';
import { ALNUM, Rng, propertySeed } from '../helpers/rng.js';

const SEED = propertySeed('hostfile-properties');
// ---------- hostfiles ----------


function randomHostname(r: Rng): string {
  switch (r.int(0, 3)) {
    case 0:
      return `${r.int(1, 255)}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;
    case 1: {
      const groups = Array.from({ length: 8 }, () => r.int(0, 0xffff).toString(16));
      if (r.bool()) return groups.join(':');
      const cut = r.int(1, 6);
      return `${groups.slice(0, cut).join(':')}::${groups.slice(cut + 1).join(':')}`;
    }
    default: {
      // Labels of letters/digits/_ joined by . or -, never starting or ending with them.
      const labels = Array.from({ length: r.int(1, 3) }, () => r.chars(ALNUM, 1, 8));
      return labels.join(r.pick(['.', '-']));
    }
  }
}

interface Spec {
  host: string;
  user: string | undefined;
  slots: number | undefined;
}

/** One hostfile line for `s` in a randomly chosen accepted syntax (with random spacing and comments). */
function hostfileLine(r: Rng, s: Spec): string {
  const v6 = s.host.includes(':');
  const who = (s.user ? `${s.user}@` : '') + s.host;
  const whoBracketed = (s.user ? `${s.user}@` : '') + (v6 ? `[${s.host}]` : s.host);
  const sp = (): string => r.pick([' ', '  ', '\t', ' \t ']);
  let line: string;
  if (s.slots === undefined) line = r.pick([who, whoBracketed]);
  else if (r.bool()) line = `${r.pick([who, whoBracketed])}${sp()}${r.pick(['slots', 'SLOTS', 'Slots'])}=${s.slots}`;
  else line = `${whoBracketed}:${s.slots}`;
  if (r.bool(0.2)) line += `${sp()}max_slots=${r.int(1, 64)}`;
  if (r.bool(0.3)) line = sp() + line;
  if (r.bool(0.3)) line += sp();
  if (r.bool(0.2)) line += ` # ${r.chars(ALNUM + ' :@[]=', 0, 20)}`;
  return line;
}

/** The documented meaning: hosts named again (same user, host case-insensitively) add their slots, in first-named order. */
function expectedHosts(lines: { spec: Spec; lineNo: number }[], file: string): HostEntry[] {
  const merged = new Map<string, HostEntry>();
  for (const { spec, lineNo } of lines) {
    const key = `${spec.user ?? ''}@${spec.host.toLowerCase()}`;
    const prior = merged.get(key);
    if (prior) prior.slots += spec.slots ?? 1;
    else merged.set(key, { host: spec.host, user: spec.user, slots: spec.slots ?? 1, origin: `${file}:${lineNo}` });
  }
  return [...merged.values()];
}

function timed<T>(f: () => T): { value: T | undefined; error: unknown; ms: number } {
  const t0 = performance.now();
  try {
    return { value: f(), error: undefined, ms: performance.now() - t0 };
  } catch (error) {
    return { value: undefined, error, ms: performance.now() - t0 };
  }
}

describe('hostfile parsing: properties', () => {
  it('any valid hostfile, in any mix of the accepted syntaxes, parses to the hosts and summed slots it names', () => {
    const r = new Rng(SEED);
    for (let trial = 0; trial < 400; trial++) {
      const pool = Array.from({ length: r.int(1, 6) }, () => ({ host: randomHostname(r), user: r.bool(0.3) ? r.chars(ALNUM, 1, 6) : undefined }));
      const lines: string[] = [];
      const named: { spec: Spec; lineNo: number }[] = [];
      for (let i = r.int(1, 12); i > 0; i--) {
        if (r.bool(0.2)) lines.push(r.pick(['', '   ', '\t', `# ${r.chars(ALNUM + ' ', 0, 30)}`]));
        const base = r.pick(pool);
        // Named again, maybe in another case: the same host.
        const host = r.bool(0.2) && !base.host.includes(':') ? base.host.toUpperCase() : base.host;
        const spec: Spec = { host, user: base.user, slots: r.bool(0.7) ? r.int(1, 512) : undefined };
        lines.push(hostfileLine(r, spec));
        named.push({ spec, lineNo: lines.length });
      }
      const text = lines.join(r.pick(['\n', '\r\n'])) + (r.bool() ? '\n' : '');
      const got = timed(() => parseHostfile(text, 'hosts.txt'));
      expect(got.error, `trial ${trial}:\n${text}`).toBeUndefined();
      expect(got.value, `trial ${trial}:\n${text}`).toEqual(expectedHosts(named, 'hosts.txt'));
    }
  });

  it('a -H list in any accepted syntax parses to the same hosts as the equivalent hostfile', () => {
    const r = new Rng(SEED + 1);
    for (let trial = 0; trial < 300; trial++) {
      const specs: Spec[] = Array.from({ length: r.int(1, 6) }, () => ({
        host: randomHostname(r),
        user: r.bool(0.3) ? r.chars(ALNUM, 1, 6) : undefined,
        slots: r.bool(0.7) ? r.int(1, 64) : undefined,
      }));
      const items = specs.map((s) => {
        const who = (s.user ? `${s.user}@` : '') + (s.host.includes(':') ? `[${s.host}]` : s.host);
        return (r.bool(0.3) ? ' ' : '') + (s.slots === undefined ? who : `${who}:${s.slots}`) + (r.bool(0.3) ? ' ' : '');
      });
      const list = items.join(',');
      const got = parseHostList(list).map((h) => [h.host, h.user, h.slots]);
      const want = expectedHosts(
        specs.map((spec, i) => ({ spec, lineNo: i })),
        '-H',
      ).map((h) => [h.host, h.user, h.slots]);
      expect(got, list).toEqual(want);
    }
  });

  it('a garbage line among valid ones parses or fails with an argument error naming that file and line, never anything else', () => {
    const r = new Rng(SEED + 2);
    const alphabets = [
      ALNUM + ' :@[]=#.-\t',
      '[]:@=,#',
      ' \t\v\f\u00a0\u2028\u0000\u001b',
      'ünïcødé漢字🙂:@=[]',
      ALNUM,
    ];
    let failures = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const before = Array.from({ length: r.int(0, 4) }, () => hostfileLine(r, { host: randomHostname(r), user: undefined, slots: r.int(1, 8) }));
      let garbage = r.chars(r.pick(alphabets), 1, 40);
      if (r.bool(0.3)) garbage = `${randomHostname(r)} ${garbage}`;
      if (r.bool(0.2)) garbage = `${randomHostname(r)}:${r.pick(['-1', '0', '1e3', '0x10', '99999999999', '', ' 2', '2 '])}`;
      garbage = garbage.replace(/[\r\n]/g, ' ');
      const text = [...before, garbage, hostfileLine(r, { host: 'zz-last', user: undefined, slots: 1 })].join('\n');
      const got = timed(() => parseHostfile(text, 'cluster.hosts'));
      if (got.error === undefined) continue;
      failures++;
      const e = got.error as RingtrainError;
      expect(e, `trial ${trial}: ${JSON.stringify(garbage)} threw a non-ringtrain error: ${String(e)}`).toBeInstanceOf(RingtrainError);
      expect(e.code).toBe('ERR_RINGTRAIN_ARGUMENT');
      expect(e.message.startsWith(`cluster.hosts:${before.length + 1}: `), `trial ${trial}: ${JSON.stringify(garbage)} -> ${e.message}`).toBe(true);
    }
    expect(failures).toBeGreaterThan(1000); // the generator does produce garbage
  });

  it('pathological long lines are parsed or refused in well under a second', () => {
    const big = 1_000_000;
    const cases = [
      'a'.repeat(big) + '!',
      'a.'.repeat(big / 2) + '.',
      'a-'.repeat(big / 2) + '-',
      '['.repeat(big),
      ':'.repeat(big),
      '@'.repeat(big) + 'host',
      `host slots=${'9'.repeat(big)}`,
      `host ${'x=1 '.repeat(big / 4)}`,
      `host${' '.repeat(big)}# comment`,
      '#'.repeat(big),
      `${'a'.repeat(big)}:2`,
    ];
    for (const line of cases) {
      const got = timed(() => parseHostfile(`ok1\n${line}\nok2\n`, 'h'));
      expect(got.ms, `${JSON.stringify(line.slice(0, 30))}... took ${got.ms.toFixed(0)} ms`).toBeLessThan(1000);
      if (got.error !== undefined) {
        expect(got.error).toBeInstanceOf(RingtrainError);
        expect((got.error as Error).message.startsWith('h:2: ')).toBe(true);
      }
    }
  });
});
