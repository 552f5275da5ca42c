/**
 * The other side of ProbeListener: an authenticated probe of one host's port, and the link test
 * (latency, then bandwidth as bytes the receiver acknowledges per second of sending).
 */
import type net from 'node:net';
import { macEqual, newNonce } from '../job-auth.js';
import type { ProbeTarget } from './agent-messages.js';
import { connectWithin, LineSocket } from './line-socket.js';
import { probeMac, probeOkMac } from './proofs.js';
import type { ProbeResult } from './report.js';

/** Round trips per latency measurement. */
export const PINGS = 20;
const CHUNK = Buffer.alloc(256 * 1024, 0x5a);

export type ProbeOutcome = Omit<ProbeResult, 'from' | 'to'> & { host: string };

function failureOf(e: NodeJS.ErrnoException): NonNullable<ProbeResult['failure']> {
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ECONNRESET':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    default:
      return 'error';
  }
}

/** Connects and proves the token both ways; resolves with the open, authenticated connection. */
async function handshake(target: ProbeTarget, from: string, token: string, kind: 'probe' | 'link', timeoutMs: number): Promise<LineSocket> {
  const deadline = Date.now() + timeoutMs;
  const socket: net.Socket = await connectWithin(target.address, target.port, timeoutMs);
  const conn = new LineSocket(socket);
  try {
    const hello = await conn.next(Math.max(1, deadline - Date.now()), 'greeting');
    if (hello.t !== 'hello' || typeof hello.nonce !== 'string') throw Object.assign(new Error('something else answers on this port (not a doctor agent)'), { code: 'EAUTH' });
    const nonce = newNonce();
    conn.send({ t: kind, from, nonce, mac: probeMac(token, hello.nonce, from) });
    const reply = await conn.next(Math.max(1, deadline - Date.now()), 'answer to the token proof');
    if (reply.t !== 'ok' || typeof reply.mac !== 'string' || !macEqual(reply.mac, probeOkMac(token, nonce))) {
      const said = typeof reply.message === 'string' ? `: ${reply.message}` : '';
      throw Object.assign(new Error(`the listener did not accept this job's token${said}`), { code: 'EAUTH' });
    }
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}

export async function probe(target: ProbeTarget, from: string, token: string, timeoutMs: number): Promise<ProbeOutcome> {
  const start = Date.now();
  const base = { host: target.host, address: target.address, port: target.port };
  try {
    const conn = await handshake(target, from, token, 'probe', timeoutMs);
    conn.close();
    return { ...base, ok: true, ms: Date.now() - start };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const failure = err.code === 'EAUTH' ? 'auth' : /no (greeting|answer)/.test(err.message) ? 'timeout' : failureOf(err);
    // The kernel's code says more than libuv's text for the rare ones (EHOSTUNREACH, ENETDOWN ...).
    const error = failure === 'error' && err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
    return { ...base, ok: false, failure, error, ms: Date.now() - start };
  }
}

export interface LinkOutcome {
  ok: boolean;
  error?: string;
  rttMs?: number;
  bytes?: number;
  seconds?: number;
}

/** Sends bulk data for `ms` (with backpressure), then waits for the receiver's byte count. */
async function sendBulk(conn: LineSocket, ms: number): Promise<number> {
  const socket = conn.socket;
  const until = Date.now() + ms;
  let sent = 0;
  while (Date.now() < until) {
    if (socket.destroyed) throw new Error('connection lost while sending');
    sent += CHUNK.length;
    if (!socket.write(CHUNK)) {
      await new Promise<void>((resolve) => {
        const left = Math.max(1, until - Date.now());
        const timer = setTimeout(resolve, left);
        socket.once('drain', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  return sent;
}

/**
 * Latency (the lowest of `pings` round trips: a busy host adds delay to some, a slow link to all) and then, when `ms` > 0, bandwidth. The coordinator measures
 * latency of all links while no bulk data flows anywhere: queued bulk bytes would be counted as delay.
 */
export async function linkTest(target: ProbeTarget, from: string, token: string, pings: number, ms: number, timeoutMs: number): Promise<LinkOutcome> {
  const deadline = Date.now() + timeoutMs;
  let conn: LineSocket | undefined;
  try {
    conn = await handshake(target, from, token, 'link', Math.min(timeoutMs, 5_000));
    const rtts: number[] = [];
    for (let i = 0; i < pings; i++) {
      const t = process.hrtime.bigint();
      conn.send({ t: 'ping' });
      const m = await conn.next(Math.max(1, deadline - Date.now()), 'pong');
      if (m.t !== 'pong') throw new Error('unexpected answer to a ping');
      rtts.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    if (ms <= 0) return { ok: true, rttMs: Math.min(...rtts) };
    conn.send({ t: 'bulk' });
    const start = process.hrtime.bigint();
    await sendBulk(conn, ms);
    conn.socket.end();
    const ack = await conn.next(Math.max(1, deadline - Date.now()), 'byte count from the receiver');
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (ack.t !== 'received' || typeof ack.bytes !== 'number') throw new Error('unexpected answer to the bulk data');
    return { ok: true, ...(rtts.length > 0 ? { rttMs: Math.min(...rtts) } : {}), bytes: ack.bytes, seconds };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  } finally {
    conn?.close();
  }
}
