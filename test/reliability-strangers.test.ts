/**
 * Strangers on every listening port while a job forms. Real ranks, real sockets on loopback:
 *  - the rendezvous port (rank 0 serves it; rank 3 starts late so the job is still forming):
 *    random bytes, a garbage line, a 100 KiB line, a truncated join, a join with numbers out of
 *    range, a join with a forged MAC, a rank process with the wrong token, an idle connection and a
 *    slowloris trickle;
 *  - the ring listeners (rank 3 is stopped with SIGSTOP right after it joined, so ranks 0 and 2 sit
 *    in ring formation): random bytes, an HTTP request, 1 MiB of noise, a truncated Hello left open,
 *    a truncated Hello then a close, a byte-a-second slowloris, and well-formed handshakes (including absurd field values) whose
 *    proof is computed exactly as ringtrain does but with another job's token.
 * Each stranger is rejected and logged (naming its address and why), the ring listener answers a
 * wrong token with AuthFailed while still proving it holds the real token itself, and the job then
 * completes with exact results. Once formed, the ring ports are closed to everyone.
 */
import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { RendezvousClient, RendezvousServer } from '../dist/rendezvous.js';
import { freePort, describeRuns, errorOf, startJob, type RankRun } from './helpers/processes.js';

const TOKEN = 'reliability-job-token-5f1c';
const WRONG = 'some-other-jobs-token-9a2e';

interface Poke {
  /** Local port of the stranger's connection, as the rank logs it. */
  localPort: number;
  reply: Buffer;
  /** The listener closed the connection (rather than the stranger giving up waiting). */
  closedByPeer: boolean;
  ms: number;
}

async function connect(port: number): Promise<net.Socket> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Connects, writes `chunks` (optionally spaced), and collects the answer until the peer closes or `waitMs` passes. */
async function poke(port: number, chunks: Buffer[], o: { gapMs?: number; waitMs: number; endAfterWrite?: boolean }): Promise<Poke> {
  const s = await connect(port);
  const t0 = Date.now();
  const localPort = s.localPort!;
  const got: Buffer[] = [];
  let closedByPeer = false;
  const closed = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    s.on('end', () => {
      closedByPeer = true;
      resolve();
    });
    s.on('close', () => {
      closedByPeer = true;
      resolve();
    });
  });
  for (const c of chunks) {
    if (s.destroyed || closedByPeer) break;
    s.write(c);
    if (o.gapMs) await Promise.race([closed, new Promise((r) => setTimeout(r, o.gapMs))]);
  }
  if (o.endAfterWrite) s.end();
  await Promise.race([closed, new Promise((r) => setTimeout(r, o.waitMs))]);
  s.destroy();
  return { localPort, reply: Buffer.concat(got), closedByPeer, ms: Date.now() - t0 };
}

// ---- the ring handshake, spoken exactly as ring_connector.cpp does (wire_format.h) ----

function hello(f: { from: number; to: number; size: number; channel?: number; version?: number }, nonce: Buffer): Buffer {
  const b = Buffer.alloc(36);
  b.write('RTH1', 0, 'latin1');
  b.writeUInt16LE(f.version ?? 1, 4);
  b.writeUInt16LE(f.channel ?? 0, 6);
  b.writeUInt32LE(f.from >>> 0, 8);
  b.writeUInt32LE(f.to >>> 0, 12);
  b.writeUInt32LE(f.size >>> 0, 16);
  nonce.copy(b, 20);
  return b;
}

function handshakeMac(token: string, role: 'A' | 'C', helloMsg: Buffer, acceptorNonce: Buffer): Buffer {
  const fields = Buffer.alloc(16);
  fields.writeUInt32LE(helloMsg.readUInt32LE(8), 0); // from
  fields.writeUInt32LE(helloMsg.readUInt32LE(12), 4); // to
  fields.writeUInt32LE(helloMsg.readUInt32LE(16), 8); // size
  fields.writeUInt32LE(helloMsg.readUInt16LE(6), 12); // channel
  const msg = Buffer.concat([Buffer.from(role, 'latin1'), helloMsg.subarray(20, 36), acceptorNonce, fields]);
  return createHmac('sha256', token).update(msg).digest();
}

interface TokenProbe {
  localPort: number;
  /** The listener's challenge carried a MAC made with the real job token. */
  challengeProvesToken: boolean;
  ack: number | undefined;
}

/** A well-formed handshake whose proof is made with `token`. */
async function ringHandshake(port: number, f: { from: number; to: number; size: number; channel?: number }, token: string): Promise<TokenProbe> {
  const s = await connect(port);
  const localPort = s.localPort!;
  const h = hello(f, randomBytes(16));
  let buf = Buffer.alloc(0);
  const waitFor = (n: number): Promise<Buffer | undefined> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (buf.length >= n) {
          cleanup();
          const out = buf.subarray(0, n);
          buf = buf.subarray(n);
          resolve(out);
        }
      };
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        check();
      };
      const done = (): void => {
        cleanup();
        resolve(undefined);
      };
      const timer = setTimeout(done, 10_000);
      const cleanup = (): void => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', done);
      };
      s.on('data', onData);
      s.on('close', done);
      check();
    });
  s.on('error', () => undefined);
  s.write(h);
  const challenge = await waitFor(52);
  let challengeProvesToken = false;
  let ack: number | undefined;
  if (challenge && challenge.subarray(0, 4).toString('latin1') === 'RTC1') {
    const acceptorNonce = challenge.subarray(4, 20);
    challengeProvesToken = handshakeMac(TOKEN, 'A', h, acceptorNonce).equals(challenge.subarray(20, 52));
    s.write(handshakeMac(token, 'C', h, acceptorNonce));
    const a = await waitFor(4);
    ack = a?.readUInt32LE(0);
  }
  s.destroy();
  return { localPort, challengeProvesToken, ack };
}

/** A rendezvous join with a MAC made with `token` (src/rendezvous.ts's format). */
async function rendezvousJoin(port: number, fields: Record<string, unknown>, token: string): Promise<Poke> {
  const s = await connect(port);
  const localPort = s.localPort!;
  const t0 = Date.now();
  let text = '';
  s.setEncoding('utf8');
  s.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  await new Promise<void>((resolve) => {
    const onData = (d: string): void => {
      text += d;
      if (text.includes('\n')) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
  });
  const serverHello = JSON.parse(text.slice(0, text.indexOf('\n'))) as { nonce: string };
  text = text.slice(text.indexOf('\n') + 1);
  s.on('data', (d: string) => (text += d));
  const mac = createHmac('sha256', token).update(['join', serverHello.nonce, fields.rank, fields.size, 0].join('|')).digest('hex');
  s.write(JSON.stringify({ t: 'join', nonce: randomBytes(16).toString('hex'), mac, ...fields }) + '\n');
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
  return { localPort, reply: Buffer.from(text), closedByPeer: true, ms: Date.now() - t0 };
}

/** The first log line of each distinct reason (the text after the stranger's address). */
function oneOfEachReason(lines: string[]): string[] {
  const seen = new Map<string, string>();
  for (const l of lines) {
    const reason = l.replace(/^ringtrain: (rank \d+ )?.*?127\.0\.0\.1:\d+: /, '$1');
    if (!seen.has(reason)) seen.set(reason, l);
  }
  return [...seen.values()];
}

function expectAllExact(runs: RankRun[], calls: number): void {
  const detail = describeRuns(runs);
  for (const r of runs) {
    expect(r.hung, `rank ${r.rank} hung\n${detail}`).toBe(false);
    expect(r.code, `rank ${r.rank}\n${detail}`).toBe(0);
    expect(r.json?.calls, detail).toBe(calls);
    expect(r.json?.wrong, detail).toBe(0);
  }
}

describe('strangers on the rendezvous port while the job forms', () => {
  it('garbage, huge and truncated lines, forged joins, a wrong-token rank and a slowloris are rejected and logged; the job completes exactly', async () => {
    const port = await freePort();
    const env = { RINGTRAIN_TOKEN: TOKEN, RINGTRAIN_TIMEOUT_MS: '20000', CALLS: '2', COUNT: '100003' };
    // Rank 3 arrives late: the rendezvous is open to strangers meanwhile.
    const job = await startJob({ size: 4, args: ['exact'], port, env, startDelayMs: (r) => (r === 3 ? 3500 : 0), killAfterMs: 60_000 });
    // Another job's rank 3 (wrong token) knocks first.
    const impostor = await startJob({ size: 4, ranks: [3], args: ['exact'], port, env: { ...env, RINGTRAIN_TOKEN: WRONG }, killAfterMs: 30_000 });

    const slowloris = poke(port, Array.from({ length: 60 }, () => Buffer.from('{')), { gapMs: 250, waitMs: 30_000 });
    const idle = poke(port, [], { waitMs: 30_000 });
    const [randomNoise, garbageLine, hugeLine, truncated, outOfRange, forged] = await Promise.all([
      poke(port, [randomBytes(4096)], { waitMs: 3000, endAfterWrite: true }),
      poke(port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], { waitMs: 3000 }),
      poke(port, [Buffer.alloc(100 * 1024, 'A')], { waitMs: 3000 }),
      poke(port, [Buffer.from('{"t":"join","rank":1,"si')], { waitMs: 300, endAfterWrite: true }),
      rendezvousJoin(port, { rank: 1e300, size: 2 ** 53, host: 'x'.repeat(5000), port: -1, pid: 'p', localRank: [] }, TOKEN),
      rendezvousJoin(port, { rank: 3, size: 4, host: '127.0.0.1', port: 9, hostname: 'evil', pid: 1, localRank: 0 }, WRONG),
    ]);
    const [runs, impostorRuns, slow, idleConn] = await Promise.all([job.done, impostor.done, slowloris, idle]);
    const detail = describeRuns([...runs, ...impostorRuns]);

    expectAllExact(runs, 6);
    const rank0 = runs.find((r) => r.rank === 0)!.stderr;
    const rejected = (p: Poke, why: string): void => {
      expect(rank0, `no rejection of 127.0.0.1:${p.localPort} (${why}) logged\n${detail}`).toContain(
        `ringtrain: rendezvous rejected a connection from 127.0.0.1:${p.localPort}: ${why}`,
      );
      expect(p.closedByPeer, why).toBe(true);
    };
    rejected(randomNoise, 'malformed join (not JSON)');
    rejected(garbageLine, 'malformed join (not JSON)');
    rejected(hugeLine, 'line longer than 65536 bytes');
    rejected(forged, 'authentication failed (wrong or missing RINGTRAIN_TOKEN)');
    // A join that authenticates but carries absurd values is refused without harming the job.
    expect(outOfRange.reply.toString()).toMatch(/"t":"error".*malformed join|"t":"error".*believes the world has/);
    expect(truncated.closedByPeer).toBe(true);
    // The wrong-token rank is refused and says so; the real rank 3 then joins.
    const imp = impostorRuns[0]!;
    expect(imp.code, detail).toBe(1);
    expect(errorOf(imp)?.code).toBe('ERR_RINGTRAIN_RENDEZVOUS');
    expect(errorOf(imp)?.message).toMatch(/refused: authentication failed \(wrong or missing RINGTRAIN_TOKEN\)/);
    // Idle and trickling strangers held no one up and were cut when the rendezvous closed.
    expect(slow.closedByPeer).toBe(true);
    expect(idleConn.closedByPeer).toBe(true);
    expect(slow.ms).toBeLessThan(20_000);
    const lines = rank0.split('\n').filter((l) => l.startsWith('ringtrain: rendezvous rejected'));
    console.log(`rendezvous strangers: ${lines.length} rejections logged by rank 0, one of each kind:\n  ${oneOfEachReason(lines).join('\n  ')}`);
  }, 90_000);

  // Once a connection is rejected, the rest of its burst is not dispatched (each line would be
  // logged as another rejection).
  it('a burst of lines from one stranger is logged once, not once per line', async () => {
    const reasons: string[] = [];
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 10_000, onReject: (_, why) => reasons.push(why) });
    try {
      await poke(server.port, [Buffer.from('\n'.repeat(5000))], { waitMs: 2000 });
      expect(reasons.length, `one connection was logged ${reasons.length} times`).toBe(1);
    } finally {
      await server.close();
    }
  });

  // Unjoined connections have a deadline and, when the server is full, the oldest unjoined one
  // makes room: idle connections (a port scanner, a slowloris) cannot stop a job from forming.
  it('64 idle strangers on the rendezvous port do not lock the ranks out', async () => {
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 15_000 });
    const idle = await Promise.all(Array.from({ length: 64 }, () => connect(server.port)));
    try {
      const join = async (rank: number) => {
        const c = await RendezvousClient.connect({ host: '127.0.0.1', port: server.port }, 8000);
        return c.join({ rank, size: 2, host: '127.0.0.1', port: 1000 + rank, hostname: 'h', localRank: rank, localSize: undefined, pid: 1 }, TOKEN);
      };
      const tables = await Promise.all([join(0), join(1)]);
      expect(tables[0]!.map((p) => p.port)).toEqual([1000, 1001]);
    } finally {
      for (const s of idle) s.destroy();
      await server.close();
    }
  }, 30_000);
});

describe('strangers on the ring listeners while the ring forms', () => {
  it('noise, truncated and slow handshakes and wrong-token proofs are rejected and logged; the ring forms and results are exact', async () => {
    // The test serves the rendezvous (as a launcher would) so it learns every rank's ring port, and
    // stops rank 3 the moment it joins: ranks 0 and 2 then wait in ring formation for it.
    const ringPorts = new Map<number, number>();
    let job: Awaited<ReturnType<typeof startJob>> | undefined;
    const server = await RendezvousServer.listen({
      host: '127.0.0.1',
      port: 0,
      size: 4,
      token: TOKEN,
      timeoutMs: 30_000,
      onJoin: (info) => {
        ringPorts.set(info.rank, info.port);
        if (info.rank === 3) job!.kill(3, 'SIGSTOP');
      },
    });
    // Rank 3 joins last (it starts late), so it is the one left out of the ring while stopped.
    job = await startJob({
      size: 4,
      args: ['exact'],
      port: server.port,
      startDelayMs: (r) => (r === 3 ? 800 : 0),
      // P2P: each round also sends to and receives from every other rank over the mesh links.
      env: { RINGTRAIN_LAUNCHER: '1', RINGTRAIN_TOKEN: TOKEN, RINGTRAIN_TIMEOUT_MS: '30000', CALLS: '2', COUNT: '100003', PAUSE_MS: '700', P2P: '1' },
      killAfterMs: 60_000,
    });
    let stopped = true;
    try {
      await server.table;
      await new Promise((r) => setTimeout(r, 300)); // ranks 0-2 are in ring formation now
      const attacks = [0, 2].map(async (rank) => {
        const port = ringPorts.get(rank)!;
        const left = (rank + 3) % 4;
        const [noise, http, megabyte, truncatedClosed, truncatedHello, slow, wrongToken, absurd, wrongMesh] = await Promise.all([
          poke(port, [randomBytes(64)], { waitMs: 3000 }),
          poke(port, [Buffer.from('GET / HTTP/1.1\r\nHost: ringtrain\r\nUser-Agent: curl/8.0\r\n\r\n')], { waitMs: 3000 }),
          poke(port, [randomBytes(1 << 20)], { waitMs: 3000 }),
          poke(port, [hello({ from: left, to: rank, size: 4 }, randomBytes(16)).subarray(0, 20)], { waitMs: 3000, endAfterWrite: true }),
          poke(port, [hello({ from: left, to: rank, size: 4 }, randomBytes(16)).subarray(0, 20)], { waitMs: 8000 }),
          poke(port, Array.from({ length: 36 }, (_, i) => hello({ from: left, to: rank, size: 4 }, randomBytes(16)).subarray(i, i + 1)), {
            gapMs: 1000,
            waitMs: 8000,
          }),
          ringHandshake(port, { from: left, to: rank, size: 4 }, WRONG),
          ringHandshake(port, { from: 0xffffffff, to: 0xffffffff, size: 0xffffffff }, WRONG),
          // Posing as rank 3's point-to-point (mesh, channel 2) link, which rank 0 and 2 still await.
          ringHandshake(port, { from: 3, to: rank, size: 4, channel: 2 }, WRONG),
        ]);
        return { rank, noise, http, megabyte, truncatedClosed, truncatedHello, slow, wrongToken, absurd, wrongMesh };
      });
      const results = await Promise.all(attacks);
      job.kill(3, 'SIGCONT');
      stopped = false;
      await job.allReady;
      // Formed: the listeners are closed, so a stranger now meets a refused connection.
      for (const [rank, port] of ringPorts) {
        await expect(
          new Promise((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port });
            s.once('connect', () => {
              s.destroy();
              resolve(`rank ${rank}'s ring port ${port} accepted a connection after the ring formed`);
            });
            s.once('error', (e: NodeJS.ErrnoException) => reject(e));
          }),
        ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      }
      const runs = await job.done;
      const detail = describeRuns(runs);
      expectAllExact(runs, 8);
      for (const r of results) {
        const log = runs.find((x) => x.rank === r.rank)!.stderr;
        const logged = (p: { localPort: number }, why: string): void => {
          expect(log, `rank ${r.rank}: no '${why}' logged for 127.0.0.1:${p.localPort}\n${detail}`).toMatch(
            new RegExp(`ringtrain: rank ${r.rank} (rejected|dropped) a connection from 127\\.0\\.0\\.1:${p.localPort}: ${why.replace(/[()]/g, '\\$&')}`),
          );
        };
        logged(r.noise, 'not a ringtrain handshake');
        logged(r.http, 'not a ringtrain handshake');
        logged(r.megabyte, 'not a ringtrain handshake');
        logged(r.truncatedClosed, 'connection closed during handshake');
        logged(r.truncatedHello, 'handshake too slow');
        logged(r.slow, 'handshake too slow');
        logged(r.wrongToken, 'authentication failed (wrong job token)');
        logged(r.absurd, 'authentication failed (wrong job token)');
        logged(r.wrongMesh, 'authentication failed (wrong job token)');
        for (const p of [r.noise, r.http, r.megabyte]) expect(p.closedByPeer).toBe(true);
        // Slow handshakes are cut after the listener's 5 s handshake limit, not left open.
        for (const p of [r.truncatedHello, r.slow]) {
          expect(p.closedByPeer).toBe(true);
          expect(p.ms).toBeGreaterThanOrEqual(4500);
          expect(p.ms).toBeLessThan(7500);
        }
        // Wrong token: told AuthFailed (1), and the listener proved it holds the real token.
        for (const p of [r.wrongToken, r.absurd, r.wrongMesh]) {
          expect(p.challengeProvesToken).toBe(true);
          expect(p.ack).toBe(1);
        }
      }
      const lines = runs.flatMap((r) => r.stderr.split('\n').filter((l) => / (rejected|dropped) a connection/.test(l)));
      console.log(`ring-listener strangers: ${lines.length} rejections logged, one of each kind:\n  ${oneOfEachReason(lines).join('\n  ')}`);
    } finally {
      if (stopped) job.kill(3, 'SIGCONT');
      await server.close().catch(() => undefined);
    }
  }, 90_000);
});
