/**
 * Property tests with small seeded random generators (no extra packages):
 *  - hostfile / -H parsing: any valid hostfile written in any mix of the accepted syntaxes parses
 *    to the same hosts and slots; any garbage line either parses or fails with an argument error
 *    naming that file and line, never another kind of exception; pathological long lines finish
 *    fast (no regex backtracking blow-up);
 *  - the rendezvous server's line/JSON handling, against a real server on loopback: random bytes,
 *    random JSON of every shape, wrong MACs and huge lines are each rejected on their connection,
 *    the server survives, and the real ranks still get the right table;
 *  - the rendezvous client against a hostile server: garbage, huge lines, a forged or altered
 *    table, silence: join() rejects with a RingtrainError before its deadline, never a bogus table.
 * RELIABILITY_SEED reproduces a run (it is printed).
 */
import { createHash, createHmac } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { RingtrainError } from '../dist/errors.js';
import { parseHostfile, parseHostList, type HostEntry } from '../dist/launcher/hostfile.js';
import { RendezvousClient, RendezvousServer } from '../dist/rendezvous.js';
import { mulberry32 } from './helpers/mulberry32.mjs';

const SEED = Number(process.env.RELIABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`reliability-properties seed: ${SEED} (RELIABILITY_SEED=${SEED} reproduces it)`);

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  chars(alphabet: string, lo: number, hi: number): string {
    let s = '';
    for (let n = this.int(lo, hi); n > 0; n--) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

// ---------- hostfiles ----------

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';

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

// ---------- rendezvous server ----------

const TOKEN = 'property-token';

function randomJson(r: Rng, depth = 0): unknown {
  switch (r.int(0, depth > 2 ? 4 : 7)) {
    case 0:
      return r.pick([0, -1, 1.5, 1e300, -0, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 65536, 4]);
    case 1:
      return r.chars(ALNUM + ' "\\\u0000ü', 0, 20);
    case 2:
      return r.pick([true, false, null]);
    case 3:
      return r.chars(ALNUM, 0, 3000);
    case 4:
      return [];
    case 5:
      return Array.from({ length: r.int(0, 4) }, () => randomJson(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['t', 'rank', 'size', 'host', 'port', 'pid', 'localRank', 'localSize', 'mac', 'nonce', 'hostname', '__proto__', 'constructor', 'x'];
      for (let n = r.int(0, 8); n > 0; n--) o[r.pick(keys)] = randomJson(r, depth + 1);
      if (r.bool(0.5)) o.t = r.pick(['join', 'hello', 'table', 'error', 'JOIN']);
      return o;
    }
  }
}

/** One stranger connection: sends `payload`, returns the server's lines and whether it closed us. */
async function stranger(port: number, payload: Buffer | string): Promise<{ lines: string[]; closed: boolean }> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  let text = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (text += d));
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write(payload);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  s.destroy();
  return { lines: text.split('\n').filter((l) => l !== ''), closed };
}

async function joinAs(port: number, rank: number, size: number, deadlineMs = 5000): Promise<{ rank: number; port: number }[]> {
  const c = await RendezvousClient.connect({ host: '127.0.0.1', port }, deadlineMs);
  return c.join({ rank, size, host: '127.0.0.1', port: 2000 + rank, hostname: `h${rank}`, localRank: 0, localSize: undefined, pid: 100 + rank }, TOKEN);
}

describe('rendezvous server line/JSON handling: properties', () => {
  it('random bytes, random JSON of every shape, wrong MACs and huge lines are each rejected; the server survives and the ranks get the right table', async () => {
    const r = new Rng(SEED + 3);
    const rejections: string[] = [];
    const server = await RendezvousServer.listen({
      host: '127.0.0.1',
      port: 0,
      size: 2,
      token: TOKEN,
      timeoutMs: 60_000,
      onReject: (_, why) => rejections.push(why),
    });
    try {
      const payloads: (Buffer | string)[] = [];
      for (let i = 0; i < 120; i++) {
        switch (i % 6) {
          case 0:
            payloads.push(Buffer.from(Array.from({ length: r.int(1, 300) }, () => r.int(0, 255)).concat([10])));
            break;
          case 1:
          case 2:
            payloads.push(JSON.stringify(randomJson(r)) + '\n');
            break;
          case 3: {
            // A well-formed join with a wrong MAC (random, empty-token, or another token's).
            const mac = r.pick([
              r.chars('0123456789abcdef', 64, 64),
              createHmac('sha256', 'not-the-token').update('join|x|0|2').digest('hex'),
              '',
              'A'.repeat(129),
            ]);
            payloads.push(JSON.stringify({ t: 'join', rank: r.int(0, 1), size: 2, host: '127.0.0.1', port: 9, pid: 1, localRank: 0, nonce: 'n', mac }) + '\n');
            break;
          }
          case 4:
            payloads.push('x'.repeat(r.int(65 * 1024, 300 * 1024)) + (r.bool() ? '\n' : ''));
            break;
          default:
            payloads.push(r.pick(['\n', '{}\n', '[]\n', 'null\n', '"join"\n', '{"t":"join"}\n', '\u0000\n', '{"__proto__":{"polluted":1}}\n']));
        }
      }
      // Eight strangers at a time.
      const results: { lines: string[]; closed: boolean }[] = [];
      for (let i = 0; i < payloads.length; i += 8) results.push(...(await Promise.all(payloads.slice(i, i + 8).map((p) => stranger(server.port, p)))));
      results.forEach((res, i) => {
        expect(res.closed, `stranger ${i} was left connected`).toBe(true);
        // The first line is always the server's hello; anything after it must be an error, never a table.
        expect(res.lines.slice(1).every((l) => (JSON.parse(l) as { t: string }).t === 'error'), JSON.stringify(res.lines)).toBe(true);
      });
      expect(rejections.length).toBeGreaterThanOrEqual(payloads.length);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      // The server is still serving: the real ranks meet and get the table they expect.
      const tables = await Promise.all([joinAs(server.port, 0, 2), joinAs(server.port, 1, 2)]);
      for (const t of tables) expect(t.map((p) => [p.rank, p.port])).toEqual([
        [0, 2000],
        [1, 2001],
      ]);
      const reasons = new Set(rejections.map((w) => w.replace(/\d+/g, 'N')));
      console.log(`rendezvous server: ${payloads.length} strangers, ${rejections.length} rejections; reasons: ${[...reasons].join(' | ')}`);
    } finally {
      await server.close();
    }
  }, 60_000);
});

// ---------- rendezvous client against a hostile server ----------

/** A fake rendezvous that answers every connection with `script(nonce-line handler)`. */
async function hostileServer(onConnection: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function tableFor(clientNonce: string, peers: unknown[], token: string): string {
  const digest = createHash('sha256').update(JSON.stringify(peers)).digest('hex');
  return JSON.stringify({ t: 'table', peers, mac: createHmac('sha256', token).update(['table', clientNonce, digest].join('|')).digest('hex') }) + '\n';
}

describe('rendezvous client against a hostile server: properties', () => {
  const hello = JSON.stringify({ t: 'hello', protocol: 'ringtrain-rdv/1', nonce: 'abcd' }) + '\n';
  const goodPeers = [
    { rank: 0, host: '127.0.0.1', port: 2000, hostname: 'h0', localRank: 0, pid: 100 },
    { rank: 1, host: '127.0.0.1', port: 2001, hostname: 'h1', localRank: 0, pid: 101 },
  ];
  type Behaviour = (s: net.Socket, join: Record<string, unknown>) => void;
  const garbage: Behaviour = (s) => s.write('\u0001\u0002garbage\n');
  const hugeLine: Behaviour = (s) => s.write('y'.repeat(200 * 1024));
  const behaviours: [string, Behaviour, RegExp][] = [
    ['answers garbage', garbage, /./],
    ['answers a huge line', hugeLine, /line longer than/],
    ['answers an error', (s) => s.end(JSON.stringify({ t: 'error', message: 'go away' }) + '\n'), /refused: go away/],
    ['closes without a table', (s) => s.end(), /closed the connection while waiting/],
    ['sends a table with a forged MAC', (s, j) => s.write(tableFor(String(j.nonce), goodPeers, 'wrong-token')), /could not prove it knows the job token/],
    ['sends a table MACed for another nonce', (s) => s.write(tableFor('replayed-nonce', goodPeers, TOKEN)), /could not prove it knows the job token/],
    ['sends a properly MACed table of the wrong size', (s, j) => s.write(tableFor(String(j.nonce), goodPeers.slice(0, 1), TOKEN)), /inconsistent table/],
    ['sends a properly MACed table out of rank order', (s, j) => s.write(tableFor(String(j.nonce), [goodPeers[1], goodPeers[0]], TOKEN)), /inconsistent table/],
    ['sends a table without peers', (s) => s.write(JSON.stringify({ t: 'table', mac: 'x' }) + '\n'), /malformed table/],
    ['goes silent', () => undefined, /timed out waiting for the other 1 rank/],
  ];
  /** Runs join() against a fake server that behaves so; returns what join() ended with. */
  async function joinHostile(behave: Behaviour): Promise<{ table: unknown; error: unknown; ms: number }> {
    const server = await hostileServer((s) => {
      s.setEncoding('utf8');
      s.write(hello);
      let buf = '';
      s.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) behave(s, JSON.parse(buf.slice(0, buf.indexOf('\n'))) as Record<string, unknown>);
      });
    });
    const t0 = Date.now();
    try {
      return await joinAs(server.port, 0, 2, 2000).then(
        (table) => ({ table, error: undefined, ms: Date.now() - t0 }),
        (error: unknown) => ({ table: undefined, error, ms: Date.now() - t0 }),
      );
    } finally {
      await server.close();
    }
  }

  for (const [name, behave, message] of behaviours) {
    it(`join() rejects, before its deadline, when the server ${name}`, async () => {
      const outcome = await joinHostile(behave);
      expect(outcome.table, 'join() accepted a bogus table').toBeUndefined();
      expect(outcome.error).toBeInstanceOf(Error);
      expect((outcome.error as Error).message).toMatch(message);
      expect(outcome.ms).toBeLessThan(2000 + 1000);
      if (behave !== garbage && behave !== hugeLine) expect(outcome.error).toBeInstanceOf(RingtrainError);
    });
  }

  it('garbage or an over-long line from the server is reported as a RingtrainError naming the rendezvous', async () => {
    for (const behave of [garbage, hugeLine]) {
      const outcome = await joinHostile(behave);
      expect(outcome.error).toBeInstanceOf(RingtrainError);
      expect((outcome.error as Error).message).toMatch(/rendezvous at 127\.0\.0\.1:\d+/);
    }
  });

  it('a well-behaved fake with the right token is accepted (the checks above are not vacuous)', async () => {
    const server = await hostileServer((s) => {
      s.setEncoding('utf8');
      s.write(hello);
      let buf = '';
      s.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) s.end(tableFor(String((JSON.parse(buf.slice(0, buf.indexOf('\n'))) as { nonce: string }).nonce), goodPeers, TOKEN));
      });
    });
    try {
      const table = await joinAs(server.port, 0, 2, 2000);
      expect(table.map((p) => p.port)).toEqual([2000, 2001]);
    } finally {
      await server.close();
    }
  });
});
