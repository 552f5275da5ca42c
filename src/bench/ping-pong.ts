/**
 * The OSU micro-benchmarks' two point-to-point figures, between ranks 0 and 1 (the other ranks
 * sit this out):
 * - latency (osu_latency): rank 0 sends, rank 1 sends back, blocking calls; half the round trip.
 * - bandwidth (osu_bw): rank 0 keeps a window of sends in flight, rank 1 receives them all and
 *   answers with a 1-byte ack; bytes of the window / time.
 */
import type { Communicator, Dtype } from '../types.js';
import { makeView } from './values.js';

export interface PingPongResult {
  latencyUs: number;
  bandwidthGBps: number;
}

/**
 * Messages in flight in the bandwidth test: 64, as osu_bw, fewer for large ones so that a window
 * stays near 64 MiB.
 */
export const BW_WINDOW = 64;

export function windowFor(bytes: number): number {
  return Math.max(1, Math.min(BW_WINDOW, Math.floor((64 << 20) / Math.max(1, bytes))));
}

const PING = 1;
const WINDOW = 2;
const ACK = 3;

export async function pingPong(comm: Communicator, dtype: Dtype, count: number, iters: number, warmup: number, bytes: number): Promise<PingPongResult> {
  const result = new Float64Array(2);
  if (comm.rank <= 1) {
    const peer = 1 - comm.rank;
    const view = makeView(dtype, count);
    const ack = new Uint8Array(1);
    const latency = (n: number): void => {
      for (let i = 0; i < n; i++) {
        if (comm.rank === 0) {
          comm.sendSync(view, peer, { tag: PING, dtype });
          comm.recvSync(view, peer, { tag: PING, dtype });
        } else {
          comm.recvSync(view, peer, { tag: PING, dtype });
          comm.sendSync(view, peer, { tag: PING, dtype });
        }
      }
    };
    const window = windowFor(bytes);
    const bandwidth = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const calls: Promise<unknown>[] = [];
        for (let w = 0; w < window; w++) {
          calls.push(comm.rank === 0 ? comm.send(view, peer, { tag: WINDOW, dtype }) : comm.recv(view, peer, { tag: WINDOW, dtype }));
        }
        await Promise.all(calls);
        if (comm.rank === 0) comm.recvSync(ack, peer, { tag: ACK });
        else comm.sendSync(ack, peer, { tag: ACK });
      }
    };
    latency(warmup);
    let t0 = performance.now();
    latency(iters);
    result[0] = ((performance.now() - t0) * 1000) / (2 * iters);
    await bandwidth(Math.min(warmup, 2));
    t0 = performance.now();
    await bandwidth(iters);
    const us = ((performance.now() - t0) * 1000) / iters;
    result[1] = us > 0 ? (bytes * window) / us / 1e3 : 0;
  }
  // Rank 0's figures, on every rank (the others contribute zeros).
  await comm.allreduce(result, { op: 'max' });
  return { latencyUs: result[0]!, bandwidthGBps: result[1]! };
}
