#!/usr/bin/env node
// ringtrain's send/recv ping-pong beside Open MPI's MPI_Send/MPI_Recv on 2 local ranks: builds
// bench/mpi/pingpong.c, then per repeat runs Open MPI, ringtrain (sendSync/recvSync) and ringtrain
// (await send/recv) back to back, so load from elsewhere hits all alike. Prints a Markdown table:
// half round trip (µs) and bandwidth (GB/s = bytes / half round trip), the median of the repeats,
// and the machine's load average before and after.
//
//   node bench/mpi/pingpong-compare.mjs [--min 4] [--max 16777216] [--iters 100] [--repeat 3]
// Needs openmpi-bin and libopenmpi-dev. Open MPI uses shared memory (vader) on one host; ringtrain TCP.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const min = opt('min', '4'), max = opt('max', String(16 << 20)), iters = opt('iters', '100');
const repeat = Number(opt('repeat', '3'));
const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rt-mpi-')), 'pingpong');
execFileSync('mpicc', ['-O2', '-o', bin, path.join(here, 'pingpong.c')], { stdio: 'inherit' });

function parse(out) {
  const rows = new Map();
  for (const line of out.split('\n')) {
    const m = /^(?:\[0\] )?(\d+) ([\d.]+) ([\d.]+) (\d+)$/.exec(line.trim());
    if (m) {
      if (m[4] !== '0') throw new Error(`wrong bytes at ${m[1]}: ${line}`);
      rows.set(Number(m[1]), { us: Number(m[2]), gbps: Number(m[3]) });
    }
  }
  return rows;
}
const runs = {
  'Open MPI': () => execFileSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '--mca', 'mpi_yield_when_idle', '1', bin, min, max, iters], { encoding: 'utf8' }),
  'ringtrain sync': () => execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), '-np', '2', '--', process.execPath, path.join(root, 'bench/p2p-pingpong.mjs'), min, max, iters, 'sync'], { encoding: 'utf8' }),
  'ringtrain async': () => execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), '-np', '2', '--', process.execPath, path.join(root, 'bench/p2p-pingpong.mjs'), min, max, iters, 'async'], { encoding: 'utf8' }),
};
const loadBefore = os.loadavg()[0];
const results = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let r = 0; r < repeat; r++) for (const [name, run] of Object.entries(runs)) results[name].push(parse(run()));
const loadAfter = os.loadavg()[0];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const names = Object.keys(runs);
const sizes = [...results['Open MPI'][0].keys()];
const fmtBytes = (b) => (b >= 1 << 20 ? `${b / (1 << 20)} MiB` : b >= 1024 ? `${b / 1024} KiB` : `${b} B`);
console.log(`| bytes | ${names.map((n) => `${n} µs`).join(' | ')} | ${names.map((n) => `${n} GB/s`).join(' | ')} |`);
console.log(`|---|${names.map(() => '---').join('|')}|${names.map(() => '---').join('|')}|`);
for (const b of sizes) {
  const us = names.map((n) => median(results[n].map((m) => m.get(b).us)).toFixed(1));
  const bw = names.map((n) => median(results[n].map((m) => m.get(b).gbps)).toFixed(3));
  console.log(`| ${fmtBytes(b)} | ${us.join(' | ')} | ${bw.join(' | ')} |`);
}
console.log(`\n${os.cpus().length} cores; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after; median of ${repeat} interleaved runs, ${iters} round trips per size.`);
