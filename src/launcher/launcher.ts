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
import { DEFAULT_ELASTIC_TIMEOUT_S, ELASTIC_ADDR_ENV, ELASTIC_ID_ENV, ELASTIC_TIMEOUT_ENV } from '../elastic-protocol.js';
import { ElasticControlServer } from './elastic-control.js';
import { ElasticCoordinator } from './elastic-coordinator.js';
import { ElasticHostPool } from './elastic-hosts.js';
import { DEFAULT_DISCOVERY_INTERVAL_S, HostDiscovery } from './host-discovery.js';
import { isLocalHost } from './local-addresses.js';
import { RankProcess, type RankExit } from './rank-process.js';
import { listenRendezvous, planRendezvous, type RendezvousPlan } from './rendezvous-address.js';
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
  /** Elastic job (--min-np): a rank's loss re-forms the world from the survivors instead of ending the job. */
  elastic?: ElasticOptions | undefined;
}

export interface ElasticOptions {
  minNp: number;
  maxNp: number;
  /** --host-discovery-script: run every intervalS seconds; its hosts are the job's from then on. */
  discoveryScript?: string | undefined;
  discoveryIntervalS?: number | undefined;
  /** Seconds for survivors to leave a broken world, and for the next world to form (--elastic-timeout). */
  timeoutS: number;
}

/** Variables the launcher sets itself: never inherited from its own environment. */
const CONTRACT_VARS = [
  'RINGTRAIN_RANK', 'RINGTRAIN_SIZE', 'RINGTRAIN_LOCAL_RANK', 'RINGTRAIN_LOCAL_SIZE', 'RINGTRAIN_ADDR',
  'RINGTRAIN_TOKEN', 'RINGTRAIN_IFACE', 'RINGTRAIN_TIMEOUT_MS', 'RINGTRAIN_PORT_RANGE', 'RINGTRAIN_LAUNCHER', PROGRESS_ENV,
  ELASTIC_ADDR_ENV, ELASTIC_ID_ENV, ELASTIC_TIMEOUT_ENV,
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
  private elastic: ElasticCoordinator | undefined;
  private discovery: HostDiscovery | undefined;
  private hostPool: ElasticHostPool | undefined;
  /** Why the launcher stopped a worker (elastic), for the summary. */
  private readonly stopReasons = new Map<number, string>();

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
    let server: { port: number; close(): Promise<void> };
    if (o.elastic) {
      server = await this.startElastic(o.elastic, token, plan, hosts, startTimeoutMs);
    } else {
      server = await this.listenOnce(size, token, plan, hosts.length, placements, machineOf);
    }

    if (o.outputDir) mkdirSync(o.outputDir, { recursive: true });
    this.spawnSettings = { token, startTimeoutMs, port: server.port, size };
    for (const p of placements) {
      const isRemote = !local.get(p.host);
      this.addRank(p, isRemote, isRemote ? plan.advertiseTo.get(p.host.host)! : plan.advertiseLocal);
    }

    const removeSignalHandlers = o.handleSignals === false ? () => undefined : this.handleSignals();
    const stopWatchingStarter = this.watchStarter();
    const startTimer = setTimeout(() => this.checkStarted(size, startTimeoutMs), startTimeoutMs);
    this.elastic?.start();
    try {
      await this.startAll();
      this.discovery?.start();
      // Workers started later (host discovery) add watchers while the first ones are awaited.
      for (let n = -1; n !== this.watchers.length; ) {
        n = this.watchers.length;
        await Promise.all(this.watchers);
      }
    } finally {
      clearTimeout(startTimer);
      this.discovery?.stop();
      removeSignalHandlers();
      stopWatchingStarter();
      await server.close();
    }

    this.status?.show('');
    if (o.timeline !== undefined) this.mergeTimeline(path.resolve(o.cwd, o.timeline), size);
    const hostCount = hosts.length;
    const wall = seconds(Date.now() - this.startedAt);
    if (this.elastic) for (const line of this.elastic.summary()) this.say(line);
    if (this.failure) {
      const stoppedBy = this.failure.signal ?? this.failure.stoppedBy;
      const what = stoppedBy ? `stopped by ${stoppedBy}` : 'job failed';
      this.say(`${what} after ${wall} (${size} rank(s) on ${hostCount} host(s)); exit code ${this.failure.exitCode}`);
      return this.failure.exitCode;
    }
    if (this.elastic) {
      const lost = this.elastic.lost.length;
      this.say(`${this.elastic.members.length} rank(s) of the last world finished in ${wall} (${this.ranks.length} worker(s) started, ${lost} lost on the way)`);
      return 0;
    }
    this.say(`${size} rank(s) on ${hostCount} host(s) finished in ${wall}`);
    return 0;
  }

  private spawnSettings = { token: '', startTimeoutMs: 0, port: 0, size: 0 };

  /** Creates (does not start) the process of one rank; `advertise`: the launcher's address as its host sees it. */
  private addRank(p: RankPlacement, isRemote: boolean, advertise: string): RankProcess {
    const o = this.options;
    const { token, startTimeoutMs, port, size } = this.spawnSettings;
    this.remoteRank.set(p.rank, isRemote);
    const env = this.rankEnv(p, size, formatHostPort(advertise, port));
    if (this.elastic) this.elastic.addWorker(p.rank, formatHost(p.host), this.hostOrder.get(formatHost(p.host)) ?? this.hostOrder.size, p.localRank);
    const argv = isRemote
      ? sshRankArgv({ ...o.ssh, connectTimeoutS: Math.min(10, startTimeoutMs / 1000), verbose: o.verbose }, formatHost(p.host), o.cwd, env, o.command)
      : localRankArgv(env, o.command);
    this.verbose(
      `rank ${p.rank} on ${formatHost(p.host)}${isRemote ? ' (ssh)' : ' (local)'}: ${['env', ...env.map(([k, v]) => `${k}=${v}`), ...o.command].map(shellQuote).join(' ')}`,
    );
    const r = new RankProcess({
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
    });
    this.ranks.push(r);
    return r;
  }

  /** Elastic job with host discovery: starts one more worker on `host` (it joins at the ranks' next commit). */
  private async spawnWorker(host: HostEntry, localRank: number): Promise<void> {
    const name = formatHost(host);
    if (!this.hostOrder.has(name)) this.hostOrder.set(name, this.hostOrder.size);
    let remote = this.hostIsRemote.get(name);
    if (remote === undefined) {
      remote = !(await isLocalHost(host.host));
      this.hostIsRemote.set(name, remote);
    }
    let advertise = this.plan!.advertiseLocal;
    if (remote) {
      const plan = await planRendezvous([host], this.options.networkInterface, this.plan!.advertiseLocal);
      advertise = plan.advertiseTo.get(host.host) ?? advertise;
    }
    if (this.stopping) return;
    const id = this.ranks.length;
    const r = this.addRank({ rank: id, host, localRank, localSize: host.slots }, remote, advertise);
    this.say(`elastic: starting worker ${id} on ${name} (slot ${localRank})`);
    r.start();
    this.watchers.push(this.watch(r));
  }

  private readonly hostIsRemote = new Map<string, boolean>();
  private plan: RendezvousPlan | undefined;

  /** The one rendezvous of a non-elastic job. */
  private async listenOnce(
    size: number,
    token: string,
    plan: RendezvousPlan,
    hostCount: number,
    placements: readonly RankPlacement[],
    machineOf: ReadonlyMap<HostEntry, Machine>,
  ): Promise<RendezvousServer> {
    const o = this.options;
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
    this.verbose(`rendezvous listening on ${formatHostPort(server.host, server.port)}; ${size} rank(s) on ${hostCount} host(s)`);
    // The server stays open until the job ends: closing it destroys its sockets, which could cut
    // off a large table still being sent. After the first table it serves the ranks' later init()s.
    this.rendezvous = server;
    server.table.then(
      () => this.verbose(`all ${size} ranks joined after ${seconds(Date.now() - this.startedAt)}`),
      // A layout the ranks' host identities contradict is a bad hostfile: exit 2, as for a bad command line.
      (e: Error) => this.fail({ message: e.message.replace(/^ringtrain: /, ''), exitCode: (e as RingtrainError).code === 'ERR_RINGTRAIN_ARGUMENT' ? 2 : 1 }),
    );

    return server;
  }

  /** Elastic job: the control server the ranks ask for worlds, and the coordinator that forms them. */
  private async startElastic(
    e: ElasticOptions,
    token: string,
    plan: RendezvousPlan,
    hosts: readonly HostEntry[],
    startTimeoutMs: number,
  ): Promise<{ port: number; close(): Promise<void> }> {
    const o = this.options;
    let control: ElasticControlServer | undefined;
    const coordinator = new ElasticCoordinator(
      { minNp: e.minNp, maxNp: e.maxNp, reformTimeoutMs: e.timeoutS * 1000, startTimeoutMs },
      () => control!,
      {
        say: (m) => this.say(m),
        verbose: (m) => this.verbose(m),
        advertiseFor: (host) => plan.advertiseTo.get(host) ?? plan.advertiseLocal,
        listen: (size, genToken, timeoutMs) =>
          listenRendezvous(
            {
              size,
              token: genToken,
              host: plan.bind,
              timeoutMs,
              onReject: (remote, reason) => this.verbose(`rendezvous refused a connection from ${remote}: ${reason}`),
            },
            o.portRange,
          ),
        stopWorker: (id) => this.stopOne(id),
        fail: (message) => this.fail({ message, exitCode: 1 }),
      },
      this.startedAt,
    );
    control = await ElasticControlServer.listen(plan.bind, o.portRange, token, {
      onNext: (id, after, reason) => coordinator.onNext(id, after, reason),
      onReject: (remote, reason) => this.say(`warning: elastic control server refused a connection from ${remote}: ${reason}`),
    });
    this.elastic = coordinator;
    if (e.discoveryScript !== undefined) {
      const pool = new ElasticHostPool(e.maxNp, {
        live: () =>
          this.ranks
            .filter((r) => r.running && !this.stopReasons.has(r.rank))
            .map((r) => ({ id: r.rank, host: formatHost(r.placement.host), localRank: r.placement.localRank })),
        spawn: (host, localRank) => this.spawnWorker(host, localRank),
        stop: (id, why) => {
          this.say(`elastic: worker ${id} ${why}`);
          this.stopOne(id, why);
        },
        say: (m) => this.say(m),
        accepting: () => !this.stopping && !coordinator.over,
      });
      this.hostPool = pool;
      this.discovery = new HostDiscovery(e.discoveryScript, (e.discoveryIntervalS ?? DEFAULT_DISCOVERY_INTERVAL_S) * 1000, (h) => pool.update(h), (m) => this.say(m));
    }
    this.hostOrder = new Map(hosts.map((h, i) => [formatHost(h), i]));
    this.plan = plan;
    this.verbose(`elastic control server on ${formatHostPort(plan.bind, control.port)} (min ${e.minNp}, max ${e.maxNp} ranks)`);
    const closeControl = control;
    return {
      port: control.port,
      close: async () => {
        await coordinator.close();
        await closeControl.close();
      },
    };
  }

  private hostOrder = new Map<string, number>();

  /** Stops one rank's process (elastic: lost or not wanted), gently first. */
  private stopOne(id: number, why = 'stopped by the launcher'): void {
    const r = this.ranks.find((x) => x.rank === id);
    if (!r || !r.running) return;
    if (!this.stopReasons.has(id)) this.stopReasons.set(id, why);
    r.closeStdin();
    setTimeout(() => r.signal('SIGTERM'), GRACE_EOF_MS).unref();
    setTimeout(() => r.signal('SIGKILL'), GRACE_EOF_MS + GRACE_TERM_MS).unref();
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
    if (this.elastic) {
      // Elastic: the rank asks the control server at `addr` for each world (its first one too).
      return [
        ...this.commonEnv(p, size).filter(([k]) => k !== 'RINGTRAIN_ADDR'),
        [ELASTIC_ADDR_ENV, addr],
        [ELASTIC_ID_ENV, String(p.rank)],
        [ELASTIC_TIMEOUT_ENV, String(this.rankWorldWaitMs())],
      ];
    }
    return this.commonEnv(p, size, addr);
  }

  /**
   * How long a rank waits for its next world: longer than the launcher can take to form one (its
   * gathering and forming deadlines, the first world's start timeout), so the launcher decides and
   * says why; the rank's own deadline only covers a launcher that went silent.
   */
  private rankWorldWaitMs(): number {
    const reformMs = (this.options.elastic?.timeoutS ?? DEFAULT_ELASTIC_TIMEOUT_S) * 1000;
    const startMs = this.options.startTimeoutS > 0 ? this.options.startTimeoutS * 1000 : 86_400_000;
    return Math.round(Math.max(startMs, reformMs) + reformMs + 10_000);
  }

  private commonEnv(p: RankPlacement, size: number, addr = ''): [string, string][] {

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
    if (this.elastic) {
      const ok = code === 0 && !exit.signal;
      const stoppedWhy = this.stopReasons.get(r.rank);
      if (!ok && stoppedWhy === undefined) this.hostPool?.workerFailed(formatHost(r.placement.host));
      this.elastic.exited(r.rank, ok, stoppedWhy ?? (ok ? 'exited with code 0' : this.describeExit(r, exit)));
      return;
    }
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
    if (this.stopping || this.joined.size === size || this.elastic) return;
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
