/**
 * Runs one job: places ranks on slots, serves the rendezvous, starts every rank (locally or over
 * ssh), relays their output, and stops them all when one fails or the launcher is told to stop.
 * A Launcher lives for one `run()`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatHostPort } from '../address.js';
import { FOREIGN_CONTRACT_VARIABLES } from '../contract.js';
import type { RingtrainError } from '../errors.js';
import type { RendezvousServer } from '../rendezvous.js';
import { PROGRESS_ENV } from '../progress.js';
import { mergeTimelines, rankTimelinePath } from '../timeline.js';
import { formatHost, type HostEntry } from './hostfile.js';
import { identifyMachines, layoutError, localJobAddress, type Machine } from './machines.js';
import { checkPortBudget } from './port-budget.js';
import { watchStarter } from './starter-watch.js';
import { RankProcess, type RankExit } from './rank-process.js';
import { listenRendezvous, planRendezvous } from './rendezvous-address.js';
import { localMachine, placeRanks, type RankPlacement } from './slots.js';
import { localRankArgv, shellQuote, sshFailureHint, sshRankArgv, type SshSettings } from './ssh-command.js';
import { StatusLine } from './status-line.js';

export interface LaunchOptions {
  /** Undefined: the local machine, one slot per CPU (or -np). */
  hosts: HostEntry[] | undefined;
  /** What the hosts came from, for messages (`hosts.txt`, `-H`). */
  hostsWhat: string;
  np: number | undefined;
  command: readonly string[];
  cwd: string;
  ssh: Omit<SshSettings, 'connectTimeoutS' | 'verbose'>;
  networkInterface: string | undefined;
  portRange: [number, number] | undefined;
  /** Seconds within which every rank must have joined the rendezvous; 0 for no limit. */
  startTimeoutS: number;
  /** Collective timeout handed to the ranks, in seconds. */
  timeoutS: number | undefined;
  /** -x NAME=VALUE pairs. */
  exportEnv: readonly (readonly [string, string])[];
  outputDir: string | undefined;
  /** Chrome-trace file: every rank records its collectives, merged here after the job. */
  timeline?: string | undefined;
  tagOutput: boolean;
  verbose: boolean;
  /** Where rank output and launcher messages go; default the process's stdout and stderr. */
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Stop the job on SIGINT/SIGTERM/SIGHUP (default true). */
  handleSignals?: boolean;
  /**
   * Stop the job when the process that started the launcher exits (see starter-watch.ts). Default
   * (undefined): when a package manager (npx, npm exec, npm run, yarn, pnpm) started it, as those do
   * not pass SIGTERM on; false: never.
   */
  exitWithParent?: boolean | undefined;
}

/** Variables the launcher sets itself: never inherited from its own environment. */
const CONTRACT_VARS = [
  'RINGTRAIN_RANK', 'RINGTRAIN_SIZE', 'RINGTRAIN_LOCAL_RANK', 'RINGTRAIN_LOCAL_SIZE', 'RINGTRAIN_ADDR',
  'RINGTRAIN_TOKEN', 'RINGTRAIN_IFACE', 'RINGTRAIN_TIMEOUT_MS', 'RINGTRAIN_PORT_RANGE', 'RINGTRAIN_LAUNCHER', PROGRESS_ENV,
];
/** Other engines' rank variables: inherited by a local rank they would contradict its contract. */
const FOREIGN_RANK_VARS = FOREIGN_CONTRACT_VARIABLES;

/** Stop sequence: EOF to every wrapper, then signals to what is still running locally. */
const GRACE_EOF_MS = 4_000;
const GRACE_TERM_MS = 2_000;
const GRACE_KILL_MS = 2_000;
/** At most this many ssh logins to one host in flight (sshd's MaxStartups defaults to 10). */
const SSH_STARTS_PER_HOST = 8;

const SIGNAL_NAMES = new Map<number, string>(Object.entries(os.constants.signals).map(([name, n]) => [n, name]));

function exitCodeOf(exit: RankExit): number {
  if (exit.signal) return 128 + (os.constants.signals[exit.signal] ?? 0);
  return exit.code ?? 1;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

interface Failure {
  message: string;
  /** What to do about it, said after the failure (and after what the launcher does next). */
  hint?: string;
  exitCode: number;
  /** Set when the launcher was told to stop rather than a rank failing. */
  signal?: NodeJS.Signals;
  /** What else stopped it, for the summary (when no signal did). */
  stoppedBy?: string;
}

export class Launcher {
  private readonly out: (text: string) => void;
  private readonly err: (text: string) => void;
  private readonly status: StatusLine | undefined;
  private readonly ranks: RankProcess[] = [];
  private readonly remoteRank = new Map<number, boolean>();
  private readonly joined = new Set<number>();
  private failure: Failure | undefined;
  private stopping = false;
  private forceStop: (() => void) | undefined;
  private forced = false;
  private readonly watchers: Promise<void>[] = [];
  private rendezvous: RendezvousServer | undefined;
  private startedAt = 0;

  constructor(private readonly options: LaunchOptions) {
    this.out = options.stdout ?? ((t) => void process.stdout.write(t));
    this.err = options.stderr ?? ((t) => void process.stderr.write(t));
    // Ranks' progress lines are drawn in place, only when the output goes to the user's terminal.
    if (options.stdout === undefined && options.stderr === undefined && process.stderr.isTTY) {
      this.status = new StatusLine((t) => void process.stderr.write(t));
      this.out = this.status.around(this.out);
      this.err = this.status.around(this.err);
    }
  }

  private say(message: string): void {
    this.err(`ringtrain: ${message}\n`);
  }

  private verbose(message: string): void {
    if (this.options.verbose) this.say(message);
  }

  /** Runs the job to the end and returns the exit code the launcher should exit with. */
  async run(): Promise<number> {
    const o = this.options;
    this.startedAt = Date.now();
    const machines = await identifyMachines(o.hosts ?? localMachine(o.np));
    const placements = placeRanks(machines.map((m) => m.entry), o.np, o.hostsWhat);
    const size = placements.length;
    const machineOf = new Map<HostEntry, Machine>(machines.map((m) => [m.entry, m]));
    const hosts = [...new Set(placements.map((p) => p.host))];
    const local = new Map<HostEntry, boolean>(hosts.map((h) => [h, machineOf.get(h)!.local]));
    for (const m of machines) {
      if (m.names.length > 1) this.verbose(`${m.names.map((n) => `'${formatHost(n)}' (${n.origin})`).join(', ')} are one machine: ${formatHost(m.entry)} with ${m.entry.slots} slot(s)`);
    }
    if (o.portRange) checkPortBudget(o.portRange, placements, (h) => local.get(h) === true);
    const remoteHosts = hosts.filter((h) => !local.get(h));
    const plan = await planRendezvous(remoteHosts, o.networkInterface, localJobAddress(machines.find((m) => m.local)));
    if (plan.warning) this.say(`warning: ${plan.warning}`);

    const token = randomBytes(32).toString('hex');
    const startTimeoutMs = o.startTimeoutS > 0 ? Math.min(o.startTimeoutS * 1000, 2_147_483_647) : 2_147_483_647;
    const server = await listenRendezvous(
      {
        size,
        token,
        host: plan.bind,
        // The launcher enforces the start timeout itself, knowing which ranks still run.
        timeoutMs: 2_147_483_647,
        // Ranks may close their communicator and init() again: each round is a new generation.
        reusable: true,
        onRoundFailure: (e) => this.fail({ message: e.message.replace(/^ringtrain: /, ''), exitCode: 1 }),
        onJoin: (info) => {
          this.joined.add(info.rank);
          this.verbose(`rank ${info.rank} joined from ${info.hostname} (${info.host}, pid ${info.pid}) after ${seconds(Date.now() - this.startedAt)}`);
        },
        checkJoin: (info, joined) => layoutError(info, joined, (rank) => machineOf.get(placements[rank]!.host)!, o.hostsWhat),
        onReject: (remote, reason) => this.say(`warning: rendezvous refused a connection from ${remote}: ${reason}`),
      },
      o.portRange,
    );
    this.verbose(`rendezvous listening on ${formatHostPort(server.host, server.port)}; ${size} rank(s) on ${hosts.length} host(s)`);
    // The server stays open until the job ends: closing it destroys its sockets, which could cut
    // off a large table still being sent. After the first table it serves the ranks' later init()s.
    this.rendezvous = server;
    server.table.then(
      () => this.verbose(`all ${size} ranks joined after ${seconds(Date.now() - this.startedAt)}`),
      // A layout the ranks' host identities contradict is a bad hostfile: exit 2, as for a bad command line.
      (e: Error) => this.fail({ message: e.message.replace(/^ringtrain: /, ''), exitCode: (e as RingtrainError).code === 'ERR_RINGTRAIN_ARGUMENT' ? 2 : 1 }),
    );

    if (o.outputDir) mkdirSync(o.outputDir, { recursive: true });
    for (const p of placements) {
      const isRemote = !local.get(p.host);
      this.remoteRank.set(p.rank, isRemote);
      const advertise = isRemote ? plan.advertiseTo.get(p.host.host)! : plan.advertiseLocal;
      const env = this.rankEnv(p, size, formatHostPort(advertise, server.port));
      const argv = isRemote
        ? sshRankArgv({ ...o.ssh, connectTimeoutS: Math.min(10, startTimeoutMs / 1000), verbose: o.verbose }, formatHost(p.host), o.cwd, env, o.command)
        : localRankArgv(env, o.command);
      this.verbose(
        `rank ${p.rank} on ${formatHost(p.host)}${isRemote ? ' (ssh)' : ' (local)'}: ${['env', ...env.map(([k, v]) => `${k}=${v}`), ...o.command].map(shellQuote).join(' ')}`,
      );
      this.ranks.push(
        new RankProcess({
          placement: p,
          remote: isRemote,
          argv,
          cwd: o.cwd,
          env: isRemote ? process.env : this.localEnv(),
          token,
          tagOutput: o.tagOutput,
          logFile: o.outputDir ? path.join(o.outputDir, `rank.${p.rank}.log`) : undefined,
          stdout: this.out,
          stderr: this.err,
          progress: this.status ? (text) => this.status!.show(text ? `[${p.rank}] ${text}` : '') : undefined,
        }),
      );
    }

    const removeSignalHandlers = o.handleSignals === false ? () => undefined : this.handleSignals();
    const stopWatchingStarter = this.watchStarter();
    const startTimer = setTimeout(() => this.checkStarted(size, startTimeoutMs), startTimeoutMs);
    try {
      await this.startAll();
      await Promise.all(this.watchers);
    } finally {
      clearTimeout(startTimer);
      removeSignalHandlers();
      stopWatchingStarter();
      await server.close();
    }

    this.status?.show('');
    if (o.timeline !== undefined) this.mergeTimeline(path.resolve(o.cwd, o.timeline), size);
    const hostCount = hosts.length;
    const wall = seconds(Date.now() - this.startedAt);
    if (this.failure) {
      const stoppedBy = this.failure.signal ?? this.failure.stoppedBy;
      const what = stoppedBy ? `stopped by ${stoppedBy}` : 'job failed';
      this.say(`${what} after ${wall} (${size} rank(s) on ${hostCount} host(s)); exit code ${this.failure.exitCode}`);
      return this.failure.exitCode;
    }
    this.say(`${size} rank(s) on ${hostCount} host(s) finished in ${wall}`);
    return 0;
  }

  /** Merges the per-rank trace files this machine can see (remote ranks write theirs on their host, at the same path). */
  private mergeTimeline(file: string, size: number): void {
    const parts = Array.from({ length: size }, (_, r) => rankTimelinePath(file, r)).filter((f) => existsSync(f));
    if (parts.length === 0) {
      this.say(`no timeline was written (did the ranks call init()?)`);
      return;
    }
    // The per-rank files are only a hand-over: removed once merged. Ranks on other hosts wrote
    // theirs there, where this launcher cannot read them; those stay.
    mergeTimelines(parts, file, { removeParts: true });
    const elsewhere = size - parts.length;
    this.say(
      `timeline of ${parts.length} rank(s) written to ${file} (open it in https://ui.perfetto.dev or chrome://tracing)` +
        (elsewhere > 0 ? `; ${elsewhere} rank(s) on other hosts left theirs there, as ${rankTimelinePath(file, 0).replace(/0\.json$/, '<N>.json')}` : ''),
    );
  }

  private rankEnv(p: RankPlacement, size: number, addr: string): [string, string][] {
    const o = this.options;
    const env: [string, string][] = [];
    // Other RINGTRAIN_* settings of the launcher's environment (segment size, stall warning) reach every rank.
    for (const [name, value] of Object.entries(process.env)) {
      if (name.startsWith('RINGTRAIN_') && !CONTRACT_VARS.includes(name) && value !== undefined) env.push([name, value]);
    }
    env.push(...o.exportEnv.map(([k, v]) => [k, v] as [string, string]));
    env.push(
      ['RINGTRAIN_RANK', String(p.rank)],
      ['RINGTRAIN_SIZE', String(size)],
      ['RINGTRAIN_LOCAL_RANK', String(p.localRank)],
      ['RINGTRAIN_LOCAL_SIZE', String(p.localSize)],
      ['RINGTRAIN_ADDR', addr],
      // The launcher serves the rendezvous: rank 0 must not try to serve one too.
      ['RINGTRAIN_LAUNCHER', '1'],
    );
    if (o.networkInterface !== undefined) env.push(['RINGTRAIN_IFACE', o.networkInterface]);
    if (o.timeoutS !== undefined) env.push(['RINGTRAIN_TIMEOUT_MS', String(Math.round(o.timeoutS * 1000))]);
    if (o.portRange !== undefined) env.push(['RINGTRAIN_PORT_RANGE', `${o.portRange[0]}-${o.portRange[1]}`]);
    if (o.timeline !== undefined) env.push(['RINGTRAIN_TIMELINE', path.resolve(o.cwd, o.timeline)]);
    if (this.status) env.push([PROGRESS_ENV, '1']);
    return env;
  }

  private localEnv(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    for (const name of [...CONTRACT_VARS, ...FOREIGN_RANK_VARS]) delete env[name];
    return env;
  }

  /** Starts local ranks at once and remote ones with at most SSH_STARTS_PER_HOST logins per host in flight. */
  private async startAll(): Promise<void> {
    const byHost = new Map<HostEntry, RankProcess[]>();
    for (const r of this.ranks) {
      const list = byHost.get(r.placement.host) ?? [];
      list.push(r);
      byHost.set(r.placement.host, list);
    }
    await Promise.all(
      [...byHost.values()].map(async (list) => {
        const remote = this.remoteRank.get(list[0]!.rank)!;
        const inFlight = new Set<Promise<unknown>>();
        for (const r of list) {
          if (this.stopping) return;
          r.start();
          this.watchers.push(this.watch(r));
          if (!remote) continue;
          const starting: Promise<unknown> = r.started.then(() => inFlight.delete(starting));
          inFlight.add(starting);
          if (inFlight.size >= SSH_STARTS_PER_HOST) await Promise.race(inFlight);
        }
      }),
    );
  }

  private async watch(r: RankProcess): Promise<void> {
    const exit = await r.exited;
    const code = exitCodeOf(exit);
    this.verbose(`rank ${r.rank} exited with code ${code}${exit.started ? '' : ' before starting'}`);
    this.rendezvous?.departed(r.rank, `rank ${r.rank} exited with code ${code}`);
    if (code === 0 && !exit.signal) return;
    const p = r.placement;
    this.fail({ message: `rank ${r.rank} on ${formatHost(p.host)} ${this.describeExit(r, exit)}`, exitCode: code });
  }

  private describeExit(r: RankProcess, exit: RankExit): string {
    const host = formatHost(r.placement.host);
    const last = r.lastStderr.at(-1);
    const said = last ? `: ${last}` : '';
    if (exit.signal) return `was killed by ${exit.signal}`;
    const code = exit.code ?? 1;
    if (!exit.started) {
      if (this.remoteRank.get(r.rank)) {
        const hint = sshFailureHint(r.lastStderr.join(' '), host);
        return `could not be started: ${code === 255 ? `ssh to ${host} failed` : `the remote shell exited with code ${code}`}${said}${hint}`;
      }
      return `could not be started (exit code ${code})${said}`;
    }
    if (code === 127) return `exited with code 127: command not found on ${host}${said}`;
    if (code === 126) return `exited with code 126: command not executable on ${host}${said}`;
    if (code > 128 && SIGNAL_NAMES.has(code - 128)) return `was killed by ${SIGNAL_NAMES.get(code - 128)} (exit code ${code})`;
    if (code === 255 && this.remoteRank.get(r.rank)) return `exited with code 255 (or the ssh connection to ${host} was lost)${said}`;
    return `exited with code ${code}`;
  }

  private checkStarted(size: number, startTimeoutMs: number): void {
    if (this.stopping || this.joined.size === size) return;
    const missing = this.ranks.filter((r) => !this.joined.has(r.rank));
    const stillRunning = missing.filter((r) => r.running);
    if (stillRunning.length === 0 && this.joined.size === 0) return; // nothing waits on a rendezvous
    const list = missing
      .map((r) => {
        const state = !r.running ? 'exited' : r.hasStarted ? 'running' : this.remoteRank.get(r.rank) ? 'ssh still connecting' : 'not started';
        return `${r.rank} on ${formatHost(r.placement.host)} (${state})`;
      })
      .join(', ');
    this.fail({
      message:
        `${missing.length} of ${size} rank(s) did not join the rendezvous within the start timeout (${startTimeoutMs / 1000}s): ${list}`,
      hint: 'Does the command call init()? Raise --start-timeout if startup is slow.',
      exitCode: 1,
    });
  }

  /** Records the first failure and stops the job; later ones are consequences. */
  private fail(failure: Failure): void {
    if (this.stopping) return;
    this.failure = failure;
    const others = this.ranks.filter((r) => r.running).length;
    const stopping = others > 0 ? `; stopping the remaining ${others} rank(s)` : '';
    this.say(`${failure.message}${stopping}${failure.hint ? `. ${failure.hint}` : ''}`);
    void this.stopAll();
  }

  private async stopAll(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // The rendezvous stays open until the ranks are gone: closing it first would make every
    // waiting rank print a rendezvous error before it is told to stop.
    const allExited = (): Promise<unknown> => Promise.all(this.ranks.filter((r) => r.running).map((r) => r.exited));
    const within = (ms: number, skippable = true): Promise<unknown> =>
      new Promise<void>((resolve) => {
        if (skippable && this.forced) {
          resolve();
          return;
        }
        const timer = setTimeout(resolve, ms);
        this.forceStop = () => {
          clearTimeout(timer);
          resolve();
        };
        void allExited().then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    for (const r of this.ranks) r.closeStdin();
    await within(GRACE_EOF_MS);
    for (const r of this.ranks) r.signal('SIGTERM');
    await within(GRACE_TERM_MS);
    for (const r of this.ranks) {
      if (r.running) this.say(`rank ${r.rank} on ${formatHost(r.placement.host)} did not stop; killing it`);
      r.signal('SIGKILL');
    }
    await within(GRACE_KILL_MS, false);
  }

  /** Stops the job once the launcher's starter is gone (when asked, or started by a package manager). */
  private watchStarter(): () => void {
    const o = this.options;
    if (o.exitWithParent === false) return () => undefined;
    const stop = watchStarter((starter) =>
      this.fail({
        message: `the process that started ringtrain (pid ${starter.pid}: ${starter.command}) is gone`,
        exitCode: 128 + os.constants.signals.SIGHUP,
        stoppedBy: 'its starter exiting',
      }),
      o.exitWithParent === true ? 'always' : 'package-manager',
    );
    if (stop) this.verbose('the job stops if the process that started ringtrain exits');
    return stop ?? (() => undefined);
  }

  private handleSignals(): () => void {
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const handler = (): void => {
        if (this.stopping) {
          if (this.forced) return;
          this.forced = true;
          this.say(`${sig} again: killing every rank now`);
          this.forceStop?.();
          return;
        }
        this.fail({ message: `got ${sig}`, exitCode: 128 + os.constants.signals[sig], signal: sig });
      };
      handlers.set(sig, handler);
      process.on(sig, handler);
    }
    return () => {
      for (const [sig, handler] of handlers) process.off(sig, handler);
    };
  }
}
