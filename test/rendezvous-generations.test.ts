/**
 * The launcher's rendezvous serves one generation of joins after the other (ranks that close and
 * init() again); a join for another generation is refused and never counted in the current one.
 * In-process: real sockets, no child processes.
 */
import { describe, expect, it } from 'vitest';
import { RendezvousClient, RendezvousServer } from '../dist/rendezvous.js';
import { RingtrainError } from '../dist/errors.js';

const TOKEN = 'generations-test-token';

function info(rank: number, size: number, port: number) {
  return { rank, size, host: '127.0.0.1', port, hostname: 'h', localRank: rank, localSize: undefined, pid: 1000 + rank };
}

async function join(port: number, rank: number, size: number, generation: number, ringPort: number, timeoutMs = 3000) {
  const c = await RendezvousClient.open({ host: '127.0.0.1', port }, timeoutMs, generation);
  return c.join(info(rank, size, ringPort), TOKEN, generation);
}

describe('rendezvous generations', () => {
  it('a reusable server completes generation after generation; each table is that round’s', async () => {
    const rejects: string[] = [];
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 10_000, reusable: true, onReject: (_, why) => rejects.push(why) });
    try {
      for (let g = 0; g < 4; g++) {
        const tables = await Promise.all([join(server.port, 0, 2, g, 2000 + 10 * g), join(server.port, 1, 2, g, 2001 + 10 * g)]);
        for (const t of tables) expect(t.map((p) => p.port)).toEqual([2000 + 10 * g, 2001 + 10 * g]);
      }
      expect(rejects).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a stale join (an earlier generation) is refused with a clear message and does not count in the current round', async () => {
    const rejects: string[] = [];
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 10_000, reusable: true, onReject: (_, why) => rejects.push(why) });
    try {
      await Promise.all([join(server.port, 0, 2, 0, 3000), join(server.port, 1, 2, 0, 3001)]);
      // Generation 1 is open. A leftover join for generation 0 claims rank 1 with another port:
      // the client refuses to join a server that is past it, and a raw stale join is rejected.
      const stale = await join(server.port, 1, 2, 0, 6666).then(() => undefined, (e: unknown) => e);
      expect(stale).toBeInstanceOf(RingtrainError);
      expect((stale as RingtrainError).code).toBe('ERR_RINGTRAIN_RENDEZVOUS');
      expect((stale as Error).message).toMatch(/already serves init\(\) #2.*same number of times/);
      const raw = await RendezvousClient.connect({ host: '127.0.0.1', port: server.port }, 2000);
      const rawStale = await raw.join(info(1, 2, 7777), TOKEN, 0).then(() => undefined, (e: unknown) => e);
      expect((rawStale as Error).message).toMatch(/refused: rank 1 joined for init\(\) #1, but this job's ranks are at init\(\) #2/);
      // The real generation-1 round is unaffected: its table has the real ports.
      const tables = await Promise.all([join(server.port, 0, 2, 1, 4000), join(server.port, 1, 2, 1, 4001)]);
      for (const t of tables) expect(t.map((p) => p.port)).toEqual([4000, 4001]);
      expect(rejects.some((r) => /joined for init\(\) #1/.test(r))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('a one-round server (rank 0’s) tells a client that is already at its next init() to come back, not “closed the connection”', async () => {
    const first = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 10_000 });
    const port = first.port;
    await Promise.all([join(port, 0, 2, 0, 5000), join(port, 1, 2, 0, 5001)]);
    // Rank 1 is at its second init() while rank 0 still has the first server open.
    const early = join(port, 1, 2, 1, 5101, 5000);
    await new Promise((r) => setTimeout(r, 200));
    await first.close();
    const second = await RendezvousServer.listen({ host: '127.0.0.1', port, size: 2, token: TOKEN, timeoutMs: 10_000, generation: 1 });
    try {
      const [t1, t0] = await Promise.all([early, join(port, 0, 2, 1, 5100)]);
      expect(t1.map((p) => p.port)).toEqual([5100, 5101]);
      expect(t0.map((p) => p.port)).toEqual([5100, 5101]);
    } finally {
      await second.close();
    }
  });

  it('a server that never reaches this generation: the client gives up at its deadline saying why', async () => {
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, size: 2, token: TOKEN, timeoutMs: 10_000, reusable: true });
    try {
      const t0 = Date.now();
      const e = await join(server.port, 0, 2, 3, 1, 600).then(() => undefined, (err: unknown) => err);
      expect((e as RingtrainError).code).toBe('ERR_RINGTRAIN_TIMEOUT');
      expect((e as Error).message).toMatch(/still serving an earlier init\(\).*init\(\) #4/);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      await server.close();
    }
  });
});
