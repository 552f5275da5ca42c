#!/usr/bin/env node
/**
 * `ringtrain`: starts one command as N ranks across hosts, locally or over ssh.
 *   ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] -- <command> [args...]
 *   ringtrain [--hosts FILE | -H ...] [-np N] [options] bench [bench options]
 *   ringtrain info [--json]
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { parsePortRange } from './address.js';
import { RingtrainError } from './errors.js';
import { parseHostList, readHostfile, type HostEntry } from './launcher/hostfile.js';
import { Launcher, type LaunchOptions } from './launcher/launcher.js';
import { loadNative, PACKAGE_ROOT, type NativeCudaInfo } from './native.js';

/** Exit code for a command line ringtrain cannot run (like most tools' usage errors). */
const USAGE_EXIT = 2;

class UsageError extends Error {}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** mpirun's single-dash long option `-np` is not something yargs parses: rewrite it before the command. */
function normalizeArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let inCommand = false;
  for (const a of args) {
    if (!inCommand && a === '--') inCommand = true;
    if (!inCommand && a === '-np') out.push('--np');
    else if (!inCommand && a.startsWith('-np=')) out.push(`--np=${a.slice(4)}`);
    else out.push(a);
  }
  return out;
}

function parseExports(values: readonly string[]): [string, string][] {
  return values.map((v) => {
    const eq = v.indexOf('=');
    const name = eq >= 0 ? v.slice(0, eq) : v;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`-x ${v}: '${name}' is not a valid environment variable name`);
    if (eq >= 0) return [name, v.slice(eq + 1)];
    const value = process.env[name];
    if (value === undefined) throw new UsageError(`-x ${name}: ${name} is not set in the launcher's environment (give -x ${name}=VALUE)`);
    return [name, value];
  });
}

/**
 * Parses a numeric option from its text, so that a message echoes what was typed (`-np abc`), not
 * what JavaScript made of it (NaN).
 */
function numberOption(
  text: string | undefined,
  what: string,
  rule: { integer?: boolean; min: number; allowMin?: boolean; max?: number },
): number | undefined {
  if (text === undefined) return undefined;
  const value = text.trim() === '' ? NaN : Number(text);
  const { integer = false, min, allowMin = true, max } = rule;
  const ok =
    Number.isFinite(value) && (integer ? Number.isInteger(value) : true) && (allowMin ? value >= min : value > min) && (max === undefined || value <= max);
  if (!ok) {
    const kind = integer ? 'a whole number' : 'a number';
    const range = max !== undefined ? `${min}..${max}` : `${allowMin ? '>=' : '>'} ${min}`;
    throw new UsageError(`${what} must be ${kind} ${range}, got '${text}'`);
  }
  return value;
}

/** `--output-dir`: made now, so an unusable one is a command-line error before anything starts. */
function prepareOutputDir(dir: string | undefined): void {
  if (dir === undefined) return;
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--output-dir ${dir}: exists and is not a directory`);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOTDIR' ? 'a part of the path is a file' : err.code === 'EACCES' ? 'permission denied' : (err.code ?? err.message);
    throw new UsageError(`--output-dir ${dir}: cannot create or write it (${why})`);
  }
}

function parser(args: string[]) {
  return yargs(args)
    .scriptName('ringtrain')
    .usage(
      'Usage:\n' +
        '  ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] -- <command> [args...]\n' +
        '  ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] bench [bench options]\n' +
        '  ringtrain info [--json]      # this installation: addon, build (CPU/CUDA), CUDA driver, GPUs\n\n' +
        'Starts <command> once per slot with the ringtrain rank contract in its environment (ranks filled\n' +
        'host by host), serves their rendezvous, prefixes their output with [rank], and stops them all\n' +
        'when one fails. Hosts other than this machine are reached with ssh (passwordless, same path on\n' +
        'every host).',
    )
    .parserConfiguration({ 'halt-at-non-option': true, 'parse-positional-numbers': false })
    .option('hosts', { alias: 'hostfile', type: 'string', describe: 'Hostfile: "host slots=N", "host:N" or "host" per line, # comments' })
    .option('H', { alias: 'host', type: 'string', describe: 'Comma-separated hosts, e.g. -H a:2,b:2,[fd00::3]:4' })
    .option('np', { alias: 'n', type: 'string', describe: 'Number of ranks (default: all slots; without hosts, one per CPU)' })
    .option('ssh-port', { type: 'string', describe: 'ssh port on every host' })
    .option('ssh-identity-file', { type: 'string', describe: 'ssh private key' })
    .option('ssh-option', { type: 'string', array: true, default: [] as string[], describe: 'Extra ssh option, passed as -o (repeatable)' })
    .option('network-interface', { type: 'string', describe: 'Interface the ranks bind and advertise on (e.g. eth0)' })
    .option('port-range', { type: 'string', describe: 'Every port ringtrain opens lies in A-B (rendezvous and ring)' })
    .option('start-timeout', { type: 'string', default: '30', describe: 'Seconds for all ranks to join, 0 for no limit' })
    .option('timeout', { type: 'string', describe: 'Collective timeout given to the ranks, in seconds' })
    .option('x', { type: 'string', array: true, default: [] as string[], describe: 'Export NAME=VALUE (or NAME from here) to every rank (repeatable)' })
    .option('output-dir', { type: 'string', describe: 'Also write each rank\'s output to DIR/rank.<N>.log' })
    .option('timeline', { type: 'string', describe: 'Record a Chrome-trace timeline of every collective (and the tfjs hook phases) to FILE' })
    .option('tag-output', { type: 'boolean', default: true, describe: 'Prefix each output line with [rank] (--no-tag-output: raw lines)' })
    .option('exit-with-parent', {
      type: 'boolean',
      describe: 'Stop the job when the process that started ringtrain exits (default: when npx, npm, yarn or pnpm started it)',
    })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Say what the launcher does' })
    .conflicts('hosts', 'H')
    .epilog(
      'Examples:\n' +
        '  ringtrain -np 4 -- node train.js                      # 4 ranks on this machine\n' +
        '  ringtrain --hosts hosts.txt -- node train.js --epochs 3\n' +
        '                                                        # every slot of hosts.txt\n' +
        '  ringtrain -H node1:2,node2:2 -x SEED=1 -- node train.js\n' +
        '                                                        # 2 hosts x 2 ranks, SEED exported\n' +
        '  ringtrain --hosts hosts.txt --network-interface eth0 --port-range 29500-29600 -- node train.js\n' +
        '                                                        # firewalled cluster\n' +
        '  ringtrain -H node1,node2 bench                        # all-reduce benchmark, 2 hosts\n\n' +
        'hosts.txt:\n' +
        '  # Open MPI style, Horovod style, or a bare host (1 slot)\n' +
        '  node1 slots=2\n' +
        '  node2:2\n' +
        '  fd00::3 slots=4\n\n' +
        'Exit status: 0 when every rank succeeds; otherwise the code of the first rank that failed\n' +
        '(128+N for signal N), 1 when ranks did not start or join in time, 2 for a bad command line.',
    )
    .version(packageVersion())
    .help()
    .alias('help', 'h')
    .strictOptions()
    .wrap(null)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
}

/** What `ringtrain info` reports; also its --json output. */
interface InstallationInfo {
  ringtrain: string;
  node: string;
  /** The N-API version this Node.js offers (the addon needs its own napiVersion or newer). */
  nodeNapiVersion: number;
  platform: string;
  arch: string;
  addon: {
    path: string;
    /** Loaded from prebuilds/ (shipped in the package), not compiled on this machine. */
    prebuilt: boolean;
    /** 'cmake-js' | 'node-gyp' | 'unknown': what compiled it (prebuilds are cmake-js builds). */
    buildSystem: string;
    napiVersion: number;
    cuda: boolean;
  };
  /** null when the addon was built without CUDA, or predates the cudaInfo export (see cudaNote). */
  cuda: NativeCudaInfo | null;
  cudaNote?: string;
}

function collectInfo(): InstallationInfo {
  const binding = loadNative();
  // node-gyp-build resolves the same file loadNative() loaded: build/ first, then prebuilds/.
  const require = createRequire(import.meta.url);
  const addonPath = (require('node-gyp-build') as { path(dir: string): string }).path(PACKAGE_ROOT);
  const build = binding.buildInfo;
  const info: InstallationInfo = {
    ringtrain: packageVersion(),
    node: process.version,
    nodeNapiVersion: Number(process.versions.napi ?? 0),
    platform: process.platform,
    arch: process.arch,
    addon: {
      path: addonPath,
      prebuilt: addonPath.split(/[\\/]/).includes('prebuilds'),
      buildSystem: build.buildSystem ?? 'unknown',
      napiVersion: build.napiVersion,
      cuda: build.cuda,
    },
    cuda: null,
  };
  if (build.cuda) {
    if (typeof binding.cudaInfo === 'function') {
      try {
        info.cuda = binding.cudaInfo();
      } catch (e) {
        info.cudaNote = `the CUDA probe failed: ${(e as Error).message}`;
      }
    } else {
      info.cudaNote = 'this addon has no cudaInfo() export: CUDA runtime, driver and GPU details are not available';
    }
  }
  return info;
}

/** CUDART_VERSION-style integer (12040) as text ("12.4"). */
function cudaVersion(v: number | undefined): string {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return 'none';
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

function formatInfo(info: InstallationInfo): string {
  const row = (name: string, value: string): string => `  ${name.padEnd(14)} ${value}`;
  const lines = [`ringtrain ${info.ringtrain}`];
  lines.push(row('Node.js', `${info.node} (N-API ${info.nodeNapiVersion}), ${info.platform}-${info.arch}`));
  lines.push(row('addon', info.addon.path));
  const origin = info.addon.prebuilt ? 'prebuilt binary from the package' : 'compiled on this machine';
  lines.push(row('', `${origin}, built by ${info.addon.buildSystem}, N-API ${info.addon.napiVersion}`));
  if (!info.addon.cuda) {
    lines.push(row('build', 'CPU only (no CUDA data path in this binary)'));
    return lines.join('\n');
  }
  const c = info.cuda;
  if (!c) {
    lines.push(row('build', 'CPU + CUDA'));
    if (info.cudaNote) lines.push(row('CUDA', info.cudaNote));
    return lines.join('\n');
  }
  const archs = typeof c.architectures === 'string' && c.architectures ? ` (${c.architectures})` : '';
  lines.push(row('build', `CPU + CUDA ${cudaVersion(c.buildCudaVersion)}${archs}`));
  lines.push(row('CUDA runtime', cudaVersion(c.runtimeVersion)));
  lines.push(row('CUDA driver', c.driverVersion > 0 ? cudaVersion(c.driverVersion) : 'none (no NVIDIA driver found)'));
  const gpus = Array.isArray(c.gpus) ? c.gpus : [];
  if (gpus.length === 0) lines.push(row('GPUs', `none${c.unavailableReason ? `: ${c.unavailableReason}` : ''}`));
  for (const g of gpus) {
    const gib = (Number(g.totalMemory) / 2 ** 30).toFixed(1);
    lines.push(
      row(`GPU ${g.index}`, `${g.name}, sm_${g.ccMajor}${g.ccMinor}, ${g.multiprocessors} SMs, ${gib} GiB, ${g.pciBusId} (${g.codePath})`),
    );
  }
  if (gpus.length > 0 && c.unavailableReason) lines.push(row('note', c.unavailableReason));
  return lines.join('\n');
}

/** `ringtrain info [--json]`: what this installation can do; exit 1 when the addon does not load. */
function runInfo(args: readonly string[]): number {
  let json = false;
  for (const a of args) {
    if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'Usage: ringtrain info [--json]\n\n' +
          'Prints the installed ringtrain: which native addon loaded (prebuilt or compiled here, by cmake-js\n' +
          'or node-gyp), its N-API version, whether it has the CUDA data path and, when it has, the CUDA\n' +
          'runtime and driver versions and the visible GPUs. --json prints the same as one JSON object.\n',
      );
      return 0;
    } else throw new UsageError(`info: unknown argument '${a}' (usage: ringtrain info [--json])`);
  }
  const info = collectInfo();
  process.stdout.write(`${json ? JSON.stringify(info, null, 2) : formatInfo(info)}\n`);
  return 0;
}

async function main(): Promise<number> {
  const args = normalizeArgs(process.argv.slice(2));
  let helpShown = false;
  const y = parser(args);
  let argv: Awaited<ReturnType<typeof y.parseAsync>>;
  try {
    argv = await y.parseAsync(args, {}, (_err, _parsed, output) => {
      if (output) {
        helpShown = true;
        process.stdout.write(`${output}\n`);
      }
    });
  } catch (e) {
    if (e instanceof UsageError || (e as Error).name === 'YError') throw new UsageError((e as Error).message);
    throw e;
  }
  if (helpShown || argv.help || argv.version) return 0;

  // Everything from the first non-option on is left verbatim in argv._ (halt-at-non-option); it was
  // written after `--` when the word before it is `--`, and then it is a command even if named bench.
  const rest = (argv._ as (string | number)[]).map(String);
  const afterDashes = args[args.length - rest.length - 1] === '--';
  if (!afterDashes && rest[0] === 'info') {
    if (args.length > rest.length) throw new UsageError('info takes no launcher options: ringtrain info [--json]');
    return runInfo(rest.slice(1));
  }
  let command: string[];
  if (!afterDashes && rest[0] === 'bench') {
    const benchCli = fileURLToPath(new URL('./bench-cli.js', import.meta.url));
    if (!existsSync(benchCli)) throw new UsageError(`bench: ${benchCli} is missing (build ringtrain first: npm run build)`);
    const benchArgs = rest.slice(1);
    // Help and version are the same on every rank: print them once, here, instead of starting ranks.
    const untilDashes = benchArgs.includes('--') ? benchArgs.slice(0, benchArgs.indexOf('--')) : benchArgs;
    if (untilDashes.some((a) => a === '--help' || a === '-h' || a === '--version')) {
      const shown = spawnSync(process.execPath, [benchCli, ...benchArgs], { stdio: 'inherit', env: process.env });
      return shown.status ?? 1;
    }
    command = ['node', benchCli, ...benchArgs];
  } else {
    command = rest;
  }
  if (command.length === 0) throw new UsageError('no command given: ringtrain [options] -- <command> [args...] (or bench)');

  let hosts: HostEntry[] | undefined;
  let hostsWhat = 'the local machine';
  if (argv.hosts !== undefined) {
    hosts = await readHostfile(argv.hosts);
    hostsWhat = argv.hosts;
  } else if (argv.H !== undefined) {
    hosts = parseHostList(argv.H);
    hostsWhat = `-H ${argv.H}`;
  }

  let portRange: [number, number] | undefined;
  if (argv['port-range'] !== undefined) {
    try {
      portRange = parsePortRange(argv['port-range'], '--port-range');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const identityFile = argv['ssh-identity-file'];
  if (identityFile !== undefined && !existsSync(identityFile)) throw new UsageError(`--ssh-identity-file ${identityFile}: no such file`);
  const sshPort = numberOption(argv['ssh-port'], '--ssh-port', { integer: true, min: 1, max: 65535 });
  const np = numberOption(argv.np, '-np', { integer: true, min: 1 });
  const startTimeoutS = numberOption(argv['start-timeout'], '--start-timeout', { min: 0 }) ?? 30;
  const timeoutS = numberOption(argv.timeout, '--timeout', { min: 0, allowMin: false });
  prepareOutputDir(argv['output-dir']);

  const options: LaunchOptions = {
    hosts,
    hostsWhat,
    np,
    command,
    cwd: process.cwd(),
    ssh: { port: sshPort, identityFile, options: argv['ssh-option'].map(String) },
    networkInterface: argv['network-interface'],
    portRange,
    startTimeoutS,
    timeoutS,
    exportEnv: parseExports(argv.x.map(String)),
    outputDir: argv['output-dir'],
    timeline: argv.timeline,
    tagOutput: argv['tag-output'],
    verbose: argv.verbose,
    exitWithParent: argv['exit-with-parent'],
  };
  return new Launcher(options).run();
}

// A reader that went away (`ringtrain ... | head`) must not crash the launcher and orphan the job.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

main().then(
  (code) => {
    process.exit(code);
  },
  (e: unknown) => {
    const usage = e instanceof UsageError || (e instanceof RingtrainError && e.code === 'ERR_RINGTRAIN_ARGUMENT');
    const message = (e as Error).message.replace(/^ringtrain: /, '');
    process.stderr.write(`ringtrain: ${message}${usage ? '\n(ringtrain --help shows the usage)' : ''}\n`);
    process.exit(usage ? USAGE_EXIT : 1);
  },
);
