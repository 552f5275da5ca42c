#!/usr/bin/env node
/**
 * `ringtrain`: starts one command as N ranks across hosts, locally or over ssh.
 *   ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] -- <command> [args...]
 *   ringtrain [--hosts FILE | -H ...] [-np N] [options] bench [bench options]
 *   ringtrain info [--json]
 *   ringtrain doctor [--hosts FILE | -H ...] [options] [--json]
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { parsePortRange } from './address.js';
import { RingtrainError } from './errors.js';
import { parseHostList, readHostfile, type HostEntry } from './launcher/hostfile.js';
import { elasticSettings } from './launcher/elastic-settings.js';
import { runDiscoveryScript } from './launcher/host-discovery.js';
import { Launcher, type LaunchOptions } from './launcher/launcher.js';
import { runAgent } from './doctor/agent.js';
import { runDoctor } from './doctor/doctor.js';
import { renderReport } from './doctor/table.js';
import { collectInfo, packageVersion, type InstallationInfo } from './installation.js';
import { formatSettingsReport, settingsReport } from './settings.js';

/** Exit code for a command line ringtrain cannot run (like most tools' usage errors). */
const USAGE_EXIT = 2;

class UsageError extends Error {}

/** mpirun's single-dash long option `-np` is not something yargs parses: rewrite it before the command. */
function normalizeArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let inCommand = false;
  for (const a of args) {
    if (!inCommand && a === '--') inCommand = true;
    if (!inCommand && a === '-np') out.push('--np');
    else if (!inCommand && a.startsWith('-np=')) out.push(`--np=${a.slice(4)}`);
    else if (!inCommand && (a === '-min-np' || a === '-max-np')) out.push(`-${a}`);
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

/** Options of everything that reaches the hosts: a job, bench, the doctor and the preflight read the same ones. */
function hostOptions<T>(y: Argv<T>) {
  return y
    .option('hosts', { alias: 'hostfile', type: 'string', describe: 'Hostfile: "host slots=N", "host:N" or "host" per line, # comments' })
    .option('H', { alias: 'host', type: 'string', describe: 'Comma-separated hosts, e.g. -H a:2,b:2,[fd00::3]:4' })
    .option('np', { alias: 'n', type: 'string', describe: 'Number of ranks (default: all slots; without hosts, one per CPU)' })
    .option('ssh-port', { type: 'string', describe: 'ssh port on every host' })
    .option('ssh-identity-file', { type: 'string', describe: 'ssh private key' })
    .option('ssh-option', { type: 'string', array: true, default: [] as string[], describe: 'Extra ssh option, passed as -o (repeatable)' })
    .option('network-interface', { type: 'string', describe: 'Interface the ranks bind and advertise on (e.g. eth0)' })
    .option('port-range', { type: 'string', describe: 'Every port ringtrain opens lies in A-B (rendezvous and ring)' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Say what the launcher does' })
    .conflicts('hosts', 'H');
}

/** The settings every yargs parser ends with: ringtrain's own usage errors, no exit from inside yargs. */
function finish<T>(y: Argv<T>) {
  return y
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

function parser(args: string[]) {
  return finish(
    hostOptions(yargs(args).scriptName('ringtrain'))
    .usage(
      'Usage:\n' +
        '  ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] -- <command> [args...]\n' +
        '  ringtrain [--hosts FILE | -H host:slots,...] [-np N] [options] bench [bench options]\n' +
        '  ringtrain info [--json]      # this installation: addon, build (CPU/CUDA), CUDA driver, GPUs, settings\n' +
        '  ringtrain doctor [--hosts FILE | -H ...] [options] [--json]   # check the cluster before a job\n\n' +
        'Starts <command> once per slot with the ringtrain rank contract in its environment (ranks filled\n' +
        'host by host), serves their rendezvous, prefixes their output with [rank], and stops them all\n' +
        'when one fails. Hosts other than this machine are reached with ssh (passwordless, same path on\n' +
        'every host).',
    )
    .parserConfiguration({ 'halt-at-non-option': true, 'parse-positional-numbers': false })
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
    .option('preflight', { type: 'boolean', default: false, describe: 'First check login and reachability of every host (the quick part of ringtrain doctor); a broken cluster fails in seconds' })
    .option('min-np', { type: 'string', describe: 'Elastic job: go on while at least this many ranks live (a lost rank re-forms the world from the survivors)' })
    .option('max-np', { type: 'string', describe: 'Elastic job: at most this many ranks (default -np)' })
    .option('host-discovery-script', { type: 'string', describe: 'Elastic job: command printing the available hosts (host:slots lines), run every few seconds' })
    .option('discovery-interval', { type: 'string', describe: 'Elastic job: seconds between runs of the host discovery script (default 3)' })
    .option('elastic-timeout', { type: 'string', describe: 'Elastic job: seconds for survivors to leave a broken world and for the next to form (default 30)' })
    .epilog(
      'Examples:\n' +
        '  ringtrain -np 4 -- node train.js                      # 4 ranks on this machine\n' +
        '  ringtrain --hosts hosts.txt -- node train.js --epochs 3\n' +
        '                                                        # every slot of hosts.txt\n' +
        '  ringtrain -H node1:2,node2:2 -x SEED=1 -- node train.js\n' +
        '                                                        # 2 hosts x 2 ranks, SEED exported\n' +
        '  ringtrain --hosts hosts.txt --network-interface eth0 --port-range 29500-29600 -- node train.js\n' +
        '                                                        # firewalled cluster\n' +
        '  ringtrain -H node1,node2 bench                        # all-reduce benchmark, 2 hosts\n' +
        '  ringtrain -np 4 --min-np 2 -- node train.js           # elastic: goes on with 2..4 ranks\n\n' +
        'hosts.txt:\n' +
        '  # Open MPI style, Horovod style, or a bare host (1 slot)\n' +
        '  node1 slots=2\n' +
        '  node2:2\n' +
        '  fd00::3 slots=4\n\n' +
        'Exit status: 0 when every rank succeeds; otherwise the code of the first rank that failed\n' +
        '(128+N for signal N), 1 when ranks did not start or join in time, 2 for a bad command line.',
    )
  );
}

function doctorParser(args: string[]) {
  return finish(
    hostOptions(yargs(args).scriptName('ringtrain doctor'))
      .usage(
        'Usage: ringtrain doctor [--hosts FILE | -H host:slots,...] [-np N] [ssh and network options] [--json]\n\n' +
          'Checks every host a job would use, through the same ssh path and options as the launcher, and\n' +
          'prints a row per host, a row per problem link, what to do, and a verdict:\n' +
          '  login         ssh without a prompt, the working directory, node and its version, ringtrain and\n' +
          '                its addon (prebuilt or built, CPU or CUDA, GPUs); the same ringtrain on every host\n' +
          '  addresses     the interface and address each host\'s ranks would bind and advertise; loopback and\n' +
          '                container-bridge addresses flagged; one interface name everywhere\n' +
          '  reachability  every host reaches the launcher and every other host on ports of --port-range\n' +
          '                (authenticated with a one-off job token): firewalls that drop or reject are named\n' +
          '  links         latency and bandwidth of each host\'s links to its ring neighbours, both ways, one\n' +
          '                link per host at a time; links below 70% of the median named\n' +
          '  slots         ranks per host against its CPUs (and GPUs with CUDA)',
      )
      .option('json', { type: 'boolean', default: false, describe: 'Print the report as one JSON object' })
      .option('check-timeout', { type: 'string', default: '15', describe: 'Seconds for ssh, login and the report of each host (a host slower than this hangs)' })
      .option('probe-timeout', { type: 'string', default: '3', describe: 'Seconds a connection probe waits for an answer' })
      .option('link-seconds', { type: 'string', default: '3', describe: 'Seconds of data for the whole bandwidth test (every host to its ring neighbours, one link at a time per host)' })
      .strict()
      .epilog(
        'Exit status: 0 when every check passes, 1 when something would make the job fail or run slowly,\n' +
          '2 for a bad command line. A job started with --preflight runs the login, address and\n' +
          'reachability checks first.',
      ),
  );
}

interface HostSettings {
  hosts: HostEntry[] | undefined;
  hostsWhat: string;
  portRange: [number, number] | undefined;
  ssh: LaunchOptions['ssh'];
}

/** Hosts, port range and ssh settings from the options hostOptions() declares. */
async function hostSettings(argv: {
  hosts?: string | undefined;
  H?: string | undefined;
  'port-range'?: string | undefined;
  'ssh-identity-file'?: string | undefined;
  'ssh-port'?: string | undefined;
  'ssh-option': (string | number)[];
}): Promise<HostSettings> {
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
  return { hosts, hostsWhat, portRange, ssh: { port: sshPort, identityFile, options: argv['ssh-option'].map(String) } };
}

function say(message: string): void {
  process.stderr.write(`ringtrain: ${message}\n`);
}

/** Parses `args`; undefined when yargs printed the help or the version (nothing else to do). */
async function parseCommandLine<T>(y: Argv<T>, args: string[]) {
  let helpShown = false;
  const argv = await y
    .parseAsync(args, {}, (_err, _parsed, output) => {
      if (output) {
        helpShown = true;
        process.stdout.write(`${output}\n`);
      }
    })
    .catch((e: unknown) => {
      throw e instanceof UsageError || (e as Error).name === 'YError' ? new UsageError((e as Error).message) : e;
    });
  return helpShown || argv.help || argv.version ? undefined : argv;
}

/** `ringtrain doctor ...`: returns 0 when every check passed, 1 otherwise. */
async function runDoctorCommand(args: string[]): Promise<number> {
  const argv = await parseCommandLine(doctorParser(args), args);
  if (!argv) return 0;
  const settings = await hostSettings(argv);
  const report = await runDoctor({
    ...settings,
    np: numberOption(argv.np, '-np', { integer: true, min: 1 }),
    cwd: process.cwd(),
    networkInterface: argv['network-interface'],
    mode: 'doctor',
    checkTimeoutS: numberOption(argv['check-timeout'], '--check-timeout', { min: 0, allowMin: false }) ?? 15,
    probeTimeoutS: numberOption(argv['probe-timeout'], '--probe-timeout', { min: 0, allowMin: false }) ?? 3,
    linkSeconds: numberOption(argv['link-seconds'], '--link-seconds', { min: 0, allowMin: false }) ?? 3,
    verbose: (m) => argv.verbose && say(m),
  });
  if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(renderReport(report, process.stdout.isTTY === true && process.env.NO_COLOR === undefined));
  return report.exitCode;
}

/** --preflight: the doctor's login, address and reachability checks; undefined when the job may start. */
async function preflight(options: LaunchOptions): Promise<number | undefined> {
  const report = await runDoctor({
    hosts: options.hosts,
    hostsWhat: options.hostsWhat,
    np: options.np,
    cwd: options.cwd,
    ssh: options.ssh,
    networkInterface: options.networkInterface,
    portRange: options.portRange,
    mode: 'preflight',
    checkTimeoutS: options.startTimeoutS > 0 ? Math.min(15, options.startTimeoutS) : 15,
    probeTimeoutS: 3,
    linkSeconds: 0,
    verbose: (m) => options.verbose && say(m),
  });
  if (report.verdict === 'fail') {
    process.stderr.write(renderReport(report, process.stderr.isTTY === true && process.env.NO_COLOR === undefined));
    say(`preflight failed after ${report.seconds.toFixed(1)}s: not starting the job (ringtrain doctor runs every check)`);
    return 1;
  }
  for (const f of report.findings) say(`preflight ${f.severity === 'note' ? 'note' : 'warning'}: ${f.message}`);
  if (options.verbose) say(`preflight passed on ${report.hosts.length} host(s) in ${report.seconds.toFixed(1)}s`);
  return undefined;
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
          'runtime and driver versions and the visible GPUs, then the tuning settings this environment\n' +
          'resolves to (value, whether from its RINGTRAIN_* variable or the default, job-wide or per\n' +
          'rank). --json prints the same as one JSON object.\n',
      );
      return 0;
    } else throw new UsageError(`info: unknown argument '${a}' (usage: ringtrain info [--json])`);
  }
  const info = collectInfo();
  // The settings a rank started from this environment would run with (src/settings.ts).
  const settings = settingsReport(process.env);
  process.stdout.write(`${json ? JSON.stringify({ ...info, settings }, null, 2) : `${formatInfo(info)}\n${formatSettingsReport(settings)}`}\n`);
  return 0;
}

async function main(): Promise<number> {
  const args = normalizeArgs(process.argv.slice(2));
  // The doctor's per-host check, started by the doctor itself through ssh: not for people.
  if (args.length === 2 && args[0] === 'doctor' && args[1] === '--agent') return runAgent();
  const argv = await parseCommandLine(parser(args), args);
  if (!argv) return 0;

  // Everything from the first non-option on is left verbatim in argv._ (halt-at-non-option); it was
  // written after `--` when the word before it is `--`, and then it is a command even if named bench.
  const rest = (argv._ as (string | number)[]).map(String);
  const afterDashes = args[args.length - rest.length - 1] === '--';
  if (!afterDashes && rest[0] === 'info') {
    if (args.length > rest.length) throw new UsageError('info takes no launcher options: ringtrain info [--json]');
    return runInfo(rest.slice(1));
  }
  if (!afterDashes && rest[0] === 'doctor') return runDoctorCommand([...args.slice(0, args.length - rest.length), ...rest.slice(1)]);
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

  const settings = await hostSettings(argv);
  const discoveryScript = argv['host-discovery-script'];
  if (discoveryScript !== undefined) {
    if (argv['min-np'] === undefined) throw new UsageError('--host-discovery-script needs --min-np (an elastic job)');
    if (settings.hosts === undefined) {
      // Alone, the script's first answer is the starting set of hosts.
      try {
        settings.hosts = await runDiscoveryScript(discoveryScript);
      } catch (e) {
        throw new Error(`the host discovery script ${discoveryScript} ${(e as Error).message}`);
      }
      if (settings.hosts.length === 0) throw new Error(`the host discovery script ${discoveryScript} printed no hosts: nothing to start`);
      settings.hostsWhat = `the host discovery script ${discoveryScript}`;
    }
  }
  const interval = numberOption(argv['discovery-interval'], '--discovery-interval', { min: 0, allowMin: false });
  if (interval !== undefined && discoveryScript === undefined) throw new UsageError('--discovery-interval needs --host-discovery-script');
  const np = numberOption(argv.np, '-np', { integer: true, min: 1 });
  const startNp = np ?? (settings.hosts ? settings.hosts.reduce((n, h) => n + h.slots, 0) : os.availableParallelism());
  const elastic = elasticSettings(
    startNp,
    numberOption(argv['min-np'], '--min-np', { integer: true, min: 1 }),
    numberOption(argv['max-np'], '--max-np', { integer: true, min: 1 }),
    numberOption(argv['elastic-timeout'], '--elastic-timeout', { min: 0, allowMin: false }),
  );
  if (elastic && discoveryScript !== undefined) {
    elastic.discoveryScript = discoveryScript;
    elastic.discoveryIntervalS = interval;
  }
  const startTimeoutS = numberOption(argv['start-timeout'], '--start-timeout', { min: 0 }) ?? 30;
  const timeoutS = numberOption(argv.timeout, '--timeout', { min: 0, allowMin: false });
  prepareOutputDir(argv['output-dir']);

  const options: LaunchOptions = {
    ...settings,
    np,
    command,
    cwd: process.cwd(),
    networkInterface: argv['network-interface'],
    startTimeoutS,
    timeoutS,
    exportEnv: parseExports(argv.x.map(String)),
    outputDir: argv['output-dir'],
    timeline: argv.timeline,
    tagOutput: argv['tag-output'],
    verbose: argv.verbose,
    exitWithParent: argv['exit-with-parent'],
    elastic,
  };
  if (argv.preflight) {
    const failed = await preflight(options);
    if (failed !== undefined) return failed;
  }
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
