#!/usr/bin/env node
// Runs ../shared/peers/compare.py (Open MPI, Gloo and ringtrain-bench side by side on a cluster of
// namespace hosts with shaped links), then writes docs/bench-<rate>.json, an SVG plot of busbw vs
// message size (docs/bench-<rate>.svg) and prints the table as Markdown.
//
//   node scripts/bench-report.mjs [--rate 1gbit] [--hosts 4] [--max 64M] [--iters 5]
//   node scripts/bench-report.mjs --from docs/bench-1gbit.json      (re-render only)
// Needs root, iproute2, iperf3, openmpi-bin, libopenmpi-dev, python3-torch (see the peers README).
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
const fmtSize = (b) => (b >= 1 << 20 ? `${b / (1 << 20)}M` : b >= 1 << 10 ? `${b / (1 << 10)}K` : `${b}`);

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
