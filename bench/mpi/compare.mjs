#!/usr/bin/env node
// Every collective's busbw beside Open MPI's same collective, on N local ranks, from one run:
// builds bench/mpi/collectives.c with mpicc, then per repeat runs each pair back to back (Open MPI,
// then `ringtrain -np N bench --collective X`), so load from elsewhere hits both alike. Prints a
// Markdown table (median busbw of the repeats, each run's figure in brackets) and the machine's load.
//
//   node bench/mpi/compare.mjs [--ranks 4] [--size 64M] [--iters 10] [--repeat 3] [--json FILE]
// Needs openmpi-bin and libopenmpi-dev (mpicc, mpirun). Open MPI uses its default transport on one
// host (shared memory, vader); ringtrain uses TCP over loopback.
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
const parseSize = (s) => {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new Error(`--size: expected e.g. 64M, got ${s}`);
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase()];
};
const ranks = Number(opt('ranks', '4'));
const bytes = parseSize(opt('size', '64M'));
const iters = Number(opt('iters', '10'));
const repeat = Number(opt('repeat', '3'));
const jsonOut = opt('json', undefined);

// ringtrain's name, Open MPI's program argument and function.
const PAIRS = [
  ['allreduce', 'allreduce', 'MPI_Allreduce'],
  ['broadcast', 'bcast', 'MPI_Bcast'],
  ['allgather', 'allgather', 'MPI_Allgather'],
  ['reducescatter', 'reduce_scatter', 'MPI_Reduce_scatter_block'],
  ['sendrecv', 'sendrecv', 'MPI_Sendrecv'],
  ['barrier', 'barrier', 'MPI_Barrier'],
];

function need(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench/mpi/compare.mjs: ${cmd} not found (apt-get install -y openmpi-bin libopenmpi-dev)`);
    process.exit(2);
  }
}
need('mpicc');
need('mpirun');
const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rt-mpi-')), 'collectives');
execFileSync('mpicc', ['-O2', '-o', bin, path.join(here, 'collectives.c')], { stdio: 'inherit' });

function runMpi(name) {
  const out = execFileSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), '--mca', 'mpi_yield_when_idle', '1', bin, name, String(bytes), String(bytes), String(iters)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const f = out.trim().split('\n').filter((l) => /^\d/.test(l)).pop().split(/\s+/).map(Number);
  return { bytes: f[0], timeUs: f[1], busbw: f[3], wrong: f[4] };
}

function runRingtrain(name) {
  const out = execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), '-np', String(ranks), '--no-tag-output', 'bench', '--collective', name, '-b', String(bytes), '-e', String(bytes), '-n', String(iters), '-w', '2', '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 24,
  });
  const doc = JSON.parse(out.trim().split('\n').pop());
  const r = doc.collectives[0].rows[0];
  return { bytes: r.bytes, timeUs: r.timeUs, busbw: r.busbwGBps, wrong: r.errors ?? 0 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const loadStart = os.loadavg()[0];
const results = Object.fromEntries(PAIRS.map(([name]) => [name, { mpi: [], ringtrain: [] }]));
for (let k = 0; k < repeat; k++) {
  for (const [name, mpiName] of PAIRS) {
    results[name].mpi.push(runMpi(mpiName));
    results[name].ringtrain.push(runRingtrain(name));
    process.stderr.write(`repeat ${k + 1}/${repeat}: ${name} done\n`);
  }
}
const loadEnd = os.loadavg()[0];

const fmt = (runs, key, digits) => `${median(runs.map((r) => r[key])).toFixed(digits)} (${runs.map((r) => r[key].toFixed(digits)).join(', ')})`;
const lines = [
  `${ranks} ranks on localhost (${os.availableParallelism()} cores), ${bytes} bytes, ${iters} timed iterations, ${repeat} interleaved repeats; ` +
    `load average ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end; median (each run)`,
  '',
  '| collective | Open MPI call | Open MPI busbw GB/s | ringtrain busbw GB/s | ringtrain / Open MPI |',
  '|---|---|---:|---:|---:|',
];
for (const [name, , fn] of PAIRS) {
  const { mpi, ringtrain } = results[name];
  const wrong = [...mpi, ...ringtrain].reduce((a, r) => a + r.wrong, 0);
  if (wrong) lines.push(`| ${name} | ${fn} | ${wrong} WRONG ELEMENTS | | |`);
  else if (name === 'barrier') {
    lines.push(`| barrier (time, µs) | ${fn} | ${fmt(mpi, 'timeUs', 1)} | ${fmt(ringtrain, 'timeUs', 1)} | ${(median(ringtrain.map((r) => r.timeUs)) / median(mpi.map((r) => r.timeUs))).toFixed(2)} (time) |`);
  } else {
    lines.push(`| ${name} | ${fn} | ${fmt(mpi, 'busbw', 4)} | ${fmt(ringtrain, 'busbw', 4)} | ${(median(ringtrain.map((r) => r.busbw)) / median(mpi.map((r) => r.busbw))).toFixed(2)} |`);
  }
}
console.log(lines.join('\n'));
if (jsonOut) {
  fs.writeFileSync(jsonOut, JSON.stringify({ ranks, bytes, iters, repeat, loadStart, loadEnd, measured: new Date().toISOString(), results }, null, 2) + '\n');
}
