/**
 * Property tests with small seeded random generators (no extra packages); the hostfile / -H
 * parsing properties are in-process unit tests (test/unit/hostfile-properties.test.ts):
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
import { RendezvousClient, RendezvousServer } from '../dist/rendezvous.js';
import { ALNUM, Rng, propertySeed } from './helpers/rng.js';

const SEED = propertySeed('reliability-properties');
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
  const hello = JSON.stringify({ t: 'hello', protocol: 'ringtrain-rdv/2', nonce: 'abcd' }) + '\n';
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
