// ringtrain's send/recv ping-pong between ranks 0 and 1, the counterpart of bench/mpi/pingpong.c
// (same sizes, iteration counts, statistics and output).
//   ringtrain -np 2 -- node bench/p2p-pingpong.mjs MIN_BYTES MAX_BYTES ITERS [sync|async]
// prints (rank 0), one line per size (x4): bytes latency_us bandwidth_GBps wrong
// latency = half the median round trip; bandwidth = bytes / latency. `sync` uses sendSync/recvSync
// (the calling thread blocks; no event-loop hop), `async` awaits send/recv.
import { init } from '../dist/index.js';

const [lo = 4, hi = 16 << 20, iters = 100] = process.argv.slice(2, 5).map(Number);
const mode = process.argv[5] ?? 'sync';
const comm = await init();
const { rank } = comm;
if (comm.size < 2) throw new Error('p2p-pingpong needs 2 ranks');
const buf = new Uint8Array(hi);
if (rank === 0) console.log(`# ringtrain send/recv (${mode}) bytes latency_us bandwidth_GBps wrong`);
for (let bytes = lo; bytes <= hi; bytes *= 4) {
  const v = buf.subarray(0, bytes);
  const want = new Uint8Array(bytes).map((_, i) => (i * 7 + 3) & 0xff);
  let wrong = 0;
  if (rank < 2) {
    const peer = 1 - rank;
    const one = async (tag) => {
      if (mode === 'sync') {
        if (rank === 0) { comm.sendSync(v, peer, { tag }); comm.recvSync(v, peer, { tag }); }
        else { comm.recvSync(v, peer, { tag }); comm.sendSync(v, peer, { tag }); }
      } else if (rank === 0) { await comm.send(v, peer, { tag }); await comm.recv(v, peer, { tag }); }
      else { await comm.recv(v, peer, { tag }); await comm.send(v, peer, { tag }); }
    };
    if (rank === 0) v.set(want);
    await one(1);
    if (rank === 0) for (let i = 0; i < bytes; i++) wrong += v[i] !== want[i] ? 1 : 0;
    const rtt = [];
    for (let k = -5; k < iters; k++) {
      const t0 = process.hrtime.bigint();
      await one(2);
      if (k >= 0) rtt.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    if (rank === 0) {
      rtt.sort((a, b) => a - b);
      const half = rtt[Math.floor(iters / 2)] / 2;
      console.log(`${bytes} ${(half * 1e6).toFixed(2)} ${(bytes / half / 1e9).toFixed(3)} ${wrong}`);
    }
  }
}
await comm.close();
