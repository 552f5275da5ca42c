#!/usr/bin/env node
// Reports and SVG plots of the benchmarks.
//
// 1. Peers (default): runs ../shared/peers/compare.py (Open MPI, Gloo and ringtrain-bench side by
//    side on a cluster of namespace hosts with shaped links), then writes docs/bench-<rate>.json, an
//    SVG plot of busbw vs message size (docs/bench-<rate>.svg) and prints the table as Markdown.
//      node scripts/bench-report.mjs [--rate 1gbit] [--hosts 4] [--max 64M] [--iters 5]
//      node scripts/bench-report.mjs --from docs/bench-1gbit.json      (re-render only)
//    Needs root, iproute2, iperf3, openmpi-bin, libopenmpi-dev, python3-torch (see the peers README).
// 2. Collectives: busbw vs size for every collective of one `ringtrain bench --collective ... --json`
//    report (rank 0's line; a launcher's "[0] " tag is fine).
//      node scripts/bench-report.mjs --collectives bench.json [--out docs/bench-collectives.svg]
// 3. Scaling: efficiency vs ranks from `ringtrain -np N bench --train --json` reports, one per N.
//      node scripts/bench-report.mjs --scaling train-2.json train-4.json [--out docs/bench-scaling.svg]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
/** The values after --name up to the next option. */
const many = (name) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const out = [];
  for (let j = i + 1; j < args.length && !args[j].startsWith('--'); j++) out.push(args[j]);
  return out;
};
const fmtSize = (b) => (b >= 1 << 20 ? `${b / (1 << 20)}M` : b >= 1 << 10 ? `${b / (1 << 10)}K` : `${b}`);
const COLORS = ['#2ca02c', '#1f77b4', '#d62728', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];

/** The JSON document in a file of bench output: the last line that parses, "[0] " tags removed. */
function readReport(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/^\[\d+\] /, '').trim()).filter(Boolean);
  for (const l of lines.reverse()) {
    try {
      return JSON.parse(l);
    } catch {
      // not the JSON line
    }
  }
  throw new Error(`${file}: no JSON report in it (run the bench with --json)`);
}

/** A line chart: series of [x, y] points; x on a log2 scale when logX. */
function lineChart({ title, xLabel, yLabel, series, logX, xTicks, yMax, hline }) {
  const W = 720, H = 420, L = 70, R = 20, T = 40, B = 60;
  const fx = (x) => (logX ? Math.log2(Math.max(x, 1)) : x);
  const xs = series.flatMap((s) => s.points.map(([x]) => fx(x)));
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const ymax = yMax ?? (Math.max(...series.flatMap((s) => s.points.map(([, y]) => y)), hline?.y ?? 0) * 1.1 || 1);
  const px = (x) => L + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (v) => H - B - (v / ymax) * (H - T - B);
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${title}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (ymax * i) / 5;
    svg.push(`<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`);
    svg.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  for (const [x, label] of xTicks) svg.push(`<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${label}</text>`);
  svg.push(`<text x="${W / 2}" y="${H - 18}" text-anchor="middle">${xLabel}</text>`);
  svg.push(`<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">${yLabel}</text>`);
  if (hline) {
    svg.push(`<line x1="${L}" x2="${W - R}" y1="${py(hline.y)}" y2="${py(hline.y)}" stroke="#999" stroke-dasharray="6 4"/>`);
    svg.push(`<text x="${W - R}" y="${py(hline.y) - 4}" text-anchor="end" fill="#666">${hline.label}</text>`);
  }
  series.forEach(({ name, points }, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    svg.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
    for (const [x, y] of points) svg.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    svg.push(`<rect x="${L + 10}" y="${T + 8 + i * 18}" width="12" height="3" fill="${color}"/><text x="${L + 28}" y="${T + 13 + i * 18}">${name}</text>`);
  });
  svg.push('</svg>');
  return svg.join('\n') + '\n';
}

function writeSvg(file, text) {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, text);
  console.log(`\nplot: ${path.relative(process.cwd(), path.resolve(file))}`);
}

const collectivesFiles = many('collectives');
const scalingFiles = many('scaling');
if (collectivesFiles) {
  const doc = readReport(collectivesFiles[0]);
  if (doc.mode !== 'collectives') throw new Error(`${collectivesFiles[0]}: not a --collective report (mode ${doc.mode})`);
  const sized = doc.collectives.filter((c) => c.busbwFactor !== null && c.rows.length);
  const lines = [`${doc.ranks} ranks on ${doc.hosts} host(s), ${doc.options.dtype}; cells: time (µs) / busbw (GB/s)`, ''];
  // Every collective swept the same requested sizes (allgather and reducescatter round theirs down
  // to n equal parts), so rows go by position; the label is the largest size at that position.
  const count = Math.max(...sized.map((c) => c.rows.length));
  lines.push(`| size | ${sized.map((c) => c.name).join(' | ')} |`, `|---:|${sized.map(() => '---:').join('|')}|`);
  for (let k = 0; k < count; k++) {
    const label = Math.max(...sized.map((c) => c.rows[k]?.bytes ?? 0));
    const cells = sized.map((c) => {
      const r = c.rows[k];
      return r ? `${r.timeUs.toFixed(1)} / ${r.busbwGBps.toFixed(4)}` : '';
    });
    lines.push(`| ${fmtSize(label)} | ${cells.join(' | ')} |`);
  }
  for (const c of doc.collectives.filter((x) => x.busbwFactor === null)) lines.push('', `${c.name}: ${c.rows[0].timeUs.toFixed(1)} µs`);
  console.log(lines.join('\n'));
  const series = sized.map((c) => ({ name: `${c.name} (busbw = algbw x ${c.busbwFormula})`, points: c.rows.filter((r) => r.bytes > 0).map((r) => [r.bytes, r.busbwGBps]) }));
  const ticks = sized[0].rows.filter((r) => r.bytes > 0).map((r) => [r.bytes, fmtSize(r.bytes)]);
  writeSvg(
    opt('out', path.join(root, 'docs', 'bench-collectives.svg')),
    lineChart({ title: `busbw of every collective, ${doc.ranks} ranks, ${doc.hosts} host(s)`, xLabel: 'size (bytes)', yLabel: 'busbw (GB/s)', series, logX: true, xTicks: ticks }),
  );
  process.exit(0);
}
if (scalingFiles) {
  const docs = scalingFiles.map((f) => readReport(f)).filter((d) => d.mode === 'train' && d.efficiency !== null).sort((a, b) => a.ranks - b.ranks);
  if (!docs.length) throw new Error('--scaling: no --train --json report with an efficiency (run with -np 2 or more)');
  const lines = [
    '| ranks | 1 process samples/s | n ranks samples/s | efficiency | = CPU share | × CPU efficiency | scaling efficiency (median of repeats) | load at start |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const pcts = (xs) => xs.map((x) => (x === undefined ? '' : `${(x * 100).toFixed(1)}%`)).join(', ');
  const points = [[1, 1]];
  for (const d of docs) {
    const r = d.repeats;
    const one = r.map((x) => x.alone.totalSamplesPerSec);
    const all = r.map((x) => x.together.totalSamplesPerSec);
    lines.push(
      `| ${d.ranks} | ${one.map((x) => x.toFixed(0)).join(', ')} | ${all.map((x) => x.toFixed(0)).join(', ')} | ${pcts(r.map((x) => x.efficiency))} | ` +
        `${pcts(r.map((x) => x.factors?.cpuShare))} | ${pcts(r.map((x) => x.factors?.cpuEfficiency))} | ${(d.efficiency * 100).toFixed(1)}% | ${d.machine.loadAtStart.toFixed(2)} |`,
    );
    points.push([d.ranks, d.efficiency]);
  }
  console.log(`${docs[0].model}, batch ${docs[0].options.batch} per rank, backend ${docs[0].backend.name} (${docs[0].backend.package})\n\n${lines.join('\n')}`);
  writeSvg(
    opt('out', path.join(root, 'docs', 'bench-scaling.svg')),
    lineChart({
      title: `weak-scaling efficiency, ${docs[0].model}, batch ${docs[0].options.batch} per rank`,
      xLabel: 'ranks',
      yLabel: 'throughput(n) / (n x throughput(1))',
      series: [{ name: 'ringtrain bench --train', points }],
      logX: false,
      xTicks: points.map(([x]) => [x, String(x)]),
      yMax: Math.max(1.1, ...points.map(([, y]) => y * 1.1)),
      hline: { y: 1, label: 'perfect scaling' },
    }),
  );
  process.exit(0);
}

const rate = opt('rate', '1gbit');
const hosts = opt('hosts', '4');
const max = opt('max', '64M');
const iters = opt('iters', '5');
const from = opt('from', undefined);

let data;
if (from) {
  data = JSON.parse(fs.readFileSync(from, 'utf8'));
} else {
  const compare = path.resolve(root, '..', 'shared', 'peers', 'compare.py');
  if (!fs.existsSync(compare)) {
    console.error(`bench-report: ${compare} not found (it comes with the shared peers folder beside the checkout)`);
    process.exit(2);
  }
  // As many timed iterations as the peers get (long busy runs meet BBR's ProbeRTT: at 64 MiB, 20
  // iterations measure ~1% below 5), except that sizes whose calls take microseconds repeat for
  // 500 ms: a mean of five such calls is noise. A second of untimed calls first warms up the JIT.
  const cmd = `node ${path.join(root, 'dist/bench-cli.js')} --csv -b 4 -e ${max} -f 4 -n ${iters} -w 5 --min-time-ms 500 --startup-warmup-ms 1000`;
  const out = execFileSync(compare, ['--hosts', hosts, '--rate', rate, '--min', '4', '--max', max, '--iters', iters, '--cmd', cmd, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  data = JSON.parse(out.trim().split('\n').pop());
  data.measured = new Date().toISOString();
  fs.writeFileSync(path.join(root, 'docs', `bench-${rate}.json`), JSON.stringify(data, null, 2) + '\n');
}

const series = [
  ['mpi', 'Open MPI', '#d62728'],
  ['gloo', 'Gloo (torch)', '#1f77b4'],
  ['cmd', 'ringtrain', '#2ca02c'],
].filter(([k]) => data.results[k]);
const sizes = [...new Set(series.flatMap(([k]) => Object.keys(data.results[k]).map(Number)))].sort((a, b) => a - b);

// Markdown table: time and busbw (and its share of the link's iperf3 goodput) per size.
const link = data.link_gbps;
const lines = [];
lines.push(`${data.hosts} hosts, links shaped to ${data.rate}, iperf3 goodput ${link.toFixed(4)} GB/s; cells: time (µs) / busbw (GB/s) / busbw ÷ goodput`);
lines.push('');
lines.push(`| bytes | ${series.map(([, n]) => n).join(' | ')} |`);
lines.push(`|---:|${series.map(() => '---:').join('|')}|`);
for (const b of sizes) {
  const cells = series.map(([k]) => {
    const r = data.results[k][String(b)];
    return r ? `${r.time_us.toFixed(1)} / ${r.busbw_gbps.toFixed(4)} / ${((r.busbw_gbps / link) * 100).toFixed(0)}%` : '';
  });
  lines.push(`| ${fmtSize(b)} | ${cells.join(' | ')} |`);
}
console.log(lines.join('\n'));

// SVG: log2 size on x, busbw on y, the link goodput as a dashed line.
const W = 720, H = 420, L = 70, R = 20, T = 40, B = 60;
const xs = sizes.map((b) => Math.log2(b));
const x0 = Math.min(...xs), x1 = Math.max(...xs);
const ymax = Math.max(link * 1.1, ...series.flatMap(([k]) => Object.values(data.results[k]).map((r) => r.busbw_gbps))) || 1;
const px = (b) => L + ((Math.log2(b) - x0) / (x1 - x0 || 1)) * (W - L - R);
const py = (v) => H - B - (v / ymax) * (H - T - B);
const svg = [];
svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
svg.push(`<rect width="${W}" height="${H}" fill="white"/>`);
svg.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">all-reduce busbw, ${data.hosts} hosts, ${data.rate} links</text>`);
for (let i = 0; i <= 5; i++) {
  const v = (ymax * i) / 5;
  svg.push(`<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`);
  svg.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
}
for (const b of sizes) svg.push(`<text x="${px(b)}" y="${H - B + 16}" text-anchor="middle">${fmtSize(b)}</text>`);
svg.push(`<text x="${W / 2}" y="${H - 18}" text-anchor="middle">message size (bytes)</text>`);
svg.push(`<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">busbw (GB/s)</text>`);
svg.push(`<line x1="${L}" x2="${W - R}" y1="${py(link)}" y2="${py(link)}" stroke="#999" stroke-dasharray="6 4"/>`);
svg.push(`<text x="${W - R}" y="${py(link) - 4}" text-anchor="end" fill="#666">iperf3 goodput ${link.toFixed(3)}</text>`);
series.forEach(([k, name, color], i) => {
  const pts = sizes.filter((b) => data.results[k][String(b)]).map((b) => `${px(b).toFixed(1)},${py(data.results[k][String(b)].busbw_gbps).toFixed(1)}`);
  svg.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
  svg.push(`<rect x="${L + 10}" y="${T + 8 + i * 18}" width="12" height="3" fill="${color}"/><text x="${L + 28}" y="${T + 13 + i * 18}">${name}</text>`);
});
svg.push('</svg>');
const svgFile = path.join(root, 'docs', `bench-${data.rate}.svg`);
fs.writeFileSync(svgFile, svg.join('\n') + '\n');
console.log(`\nplot: ${path.relative(root, svgFile)}`);
