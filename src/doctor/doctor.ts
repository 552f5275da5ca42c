/**
 * The doctor's coordinator, on the launching machine: places ranks as the launcher would, starts
 * the agent on every host through the launcher's path, then runs the checks in phases, each with
 * its own deadline (login, connection back to the launcher, probes, links), and always stops every
 * agent before it returns. The result is a DoctorReport; rendering it is table.ts's business.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatHostPort } from '../address.js';
import { formatHost, type HostEntry } from '../launcher/hostfile.js';
import { resolveHost } from '../launcher/local-addresses.js';
import { identifyMachines, localJobAddress, type Machine } from '../launcher/machines.js';
import { checkPortBudget } from '../launcher/port-budget.js';
import { planRendezvous } from '../launcher/rendezvous-address.js';
import { localMachine, placeRanks } from '../launcher/slots.js';
import type { SshSettings } from '../launcher/ssh-command.js';
import { AGENT_ENV, type ControlReply, type ProbeTarget } from './agent-messages.js';
import { linkRounds } from './checks/link-check.js';
import { ControlServer, type AgentSession } from './control-server.js';
import { PINGS } from './probe-client.js';
import { HostAgent } from './host-agent.js';
import { DOCTOR_REPORT_VERSION, type DoctorReport, type HostReport, type LinkResult, type ProbeResult } from './report.js';
import { allFindings, verdictOf } from './verdict.js';

/** The agent's command on every host: this installation's CLI, at the same path (as the launcher assumes of cwd). */
const CLI_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
/** Time an agent has to connect back to the launcher after reporting. */
const CONTROL_WAIT_MS = 8_000;
const REPLY_SLACK_MS = 3_000;
/** A bandwidth round shorter than this mostly measures TCP's start. */
const MIN_ROUND_MS = 250;

export interface DoctorOptions {
  hosts: HostEntry[] | undefined;
  hostsWhat: string;
  np: number | undefined;
  cwd: string;
  ssh: Omit<SshSettings, 'connectTimeoutS' | 'verbose'>;
  networkInterface: string | undefined;
  portRange: [number, number] | undefined;
  /** doctor: every check; preflight: login, addresses and reachability (what would make the job fail to start). */
  mode: 'doctor' | 'preflight';
  /** Seconds for ssh, login and the agent's report on every host. */
  checkTimeoutS: number;
  /** Seconds one probe may wait for an answer. */
  probeTimeoutS: number;
  /** Seconds of bulk data for the whole bandwidth test (shared by its rounds). */
  linkSeconds: number;
  /** The command that runs the agent on each host (default: `node <this ringtrain>/dist/cli.js doctor --agent`). */
  agentCommand?: readonly string[];
  verbose: (message: string) => void;
}

interface Participant {
  report: HostReport;
  agent: HostAgent | undefined;
  session: AgentSession | undefined;
  ports: number[];
}

/** A local agent's environment: the launcher's, without settings of its own that could contradict what it is given. */
function agentLocalEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.values(AGENT_ENV)) delete env[name];
  return env;
}

function errorText(e: unknown): string {
  return (e as Error).message.replace(/^ringtrain: /, '');
}

export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const startedAt = Date.now();
  // The launcher's own placement: names of one machine merged, ranks filled host by host.
  const machines = await identifyMachines(o.hosts ?? localMachine(o.np));
  const placements = placeRanks(machines.map((m) => m.entry), o.np, o.hostsWhat);
  const machineOf = new Map<HostEntry, Machine>(machines.map((m) => [m.entry, m]));
  const entries = [...new Set(placements.map((p) => p.host))];
  const ranksOn = (h: HostEntry): number => placements.filter((p) => p.host === h).length;
  if (o.portRange) checkPortBudget(o.portRange, placements, (h) => machineOf.get(h)!.local);

  const people: Participant[] = entries.map((h) => ({
    report: {
      host: formatHost(h),
      origin: h.origin,
      names: machineOf.get(h)!.names.map((n) => `${formatHost(n)} (${n.origin})`),
      ranks: ranksOn(h),
      local: false,
      login: { ok: false, seconds: 0 },
    },
    agent: undefined,
    session: undefined,
    ports: [],
  }));
  const local = entries.map((h) => machineOf.get(h)!.local);
  // A host whose name does not resolve fails its login here, as ssh would; the others go on.
  const resolvable = await Promise.all(
    entries.map(async (h, i) => {
      if (local[i]) return true;
      try {
        await resolveHost(h.host);
        return true;
      } catch (e) {
        people[i]!.report.login = { ok: false, seconds: 0, error: `${errorText(e)} (named in ${h.origin})` };
        return false;
      }
    }),
  );
  entries.forEach((_, i) => (people[i]!.report.local = local[i]!));
  const remote = entries.filter((_, i) => !local[i] && resolvable[i]);
  const plan = await planRendezvous(remote, o.networkInterface, localJobAddress(machines.find((m) => m.local)));
  if (plan.warning) o.verbose(`warning: ${plan.warning}`);

  const token = randomBytes(32).toString('hex');
  const names = people.map((p) => p.report.host);
  const control = await ControlServer.listen(plan.bind, o.portRange, token, names);
  const checkMs = o.checkTimeoutS * 1000;
  const probeMs = o.probeTimeoutS * 1000;
  const rounds = o.mode === 'doctor' ? linkRounds(entries.length).length : 0;
  // --link-seconds is the bandwidth test's whole budget, shared by its rounds.
  const linkMs = rounds > 0 ? Math.max(MIN_ROUND_MS, (o.linkSeconds * 1000) / rounds) : 0;
  // The latency round, then the bandwidth rounds, each with its reply slack; then a margin.
  const lifetimeMs = checkMs + CONTROL_WAIT_MS + probeMs + REPLY_SLACK_MS + (rounds > 0 ? rounds + 1 : 0) * (linkMs + 3 * REPLY_SLACK_MS) + 10_000;
  const launcherAddress = (h: HostEntry, i: number): string =>
    formatHostPort(local[i] ? plan.advertiseLocal : plan.advertiseTo.get(h.host) ?? plan.advertiseLocal, control.port);

  try {
    entries.forEach((h, i) => {
      if (!resolvable[i]) return;
      const env: [string, string][] = [
        [AGENT_ENV.control, launcherAddress(h, i)],
        [AGENT_ENV.host, people[i]!.report.host],
        [AGENT_ENV.lifetimeMs, String(lifetimeMs)],
      ];
      if (o.networkInterface !== undefined) env.push([AGENT_ENV.iface, o.networkInterface]);
      if (o.portRange !== undefined) env.push([AGENT_ENV.portRange, `${o.portRange[0]}-${o.portRange[1]}`]);
      people[i]!.agent = new HostAgent({
        host: h,
        index: i,
        local: local[i]!,
        command: o.agentCommand ?? ['node', CLI_PATH, 'doctor', '--agent'],
        cwd: o.cwd,
        env,
        ssh: { ...o.ssh, connectTimeoutS: Math.min(10, o.checkTimeoutS) },
        token,
        localEnv: agentLocalEnv(),
        verbose: o.verbose,
      });
    });

    await loginPhase(people, checkMs);
    await controlPhase(people, control, entries.map(launcherAddress));
    const probes = await probePhase(people, probeMs);
    const links = o.mode === 'doctor' ? await linkPhases(people, probes, linkMs) : [];
    const facts = { hosts: people.map((p) => p.report), probes, links, networkInterface: o.networkInterface ?? null };
    const findings = allFindings(facts).filter((f) => o.mode === 'doctor' || f.check !== 'slots');
    return {
      version: DOCTOR_REPORT_VERSION,
      mode: o.mode,
      hostsWhat: o.hostsWhat,
      portRange: o.portRange ?? null,
      launcherAddress: formatHostPort(plan.advertiseLocal, control.port),
      ...facts,
      findings,
      ...verdictOf(findings),
      seconds: (Date.now() - startedAt) / 1000,
    };
  } finally {
    for (const p of people) p.session?.bye();
    await Promise.all(people.map((p) => p.agent?.stop()));
    control.close();
  }
}

async function loginPhase(people: Participant[], checkMs: number): Promise<void> {
  await Promise.all(
    people.map(async (p) => {
      if (!p.agent) return;
      p.report.login = await p.agent.login(checkMs);
      if (p.agent.info) p.report.info = p.agent.info;
    }),
  );
}

async function controlPhase(people: Participant[], control: ControlServer, addresses: string[]): Promise<void> {
  await Promise.all(
    people.map(async (p, i) => {
      if (!p.report.login.ok || !p.agent) return;
      const address = addresses[i]!;
      // Stop waiting as soon as the agent says it could not connect, or exits.
      const session = await Promise.race([
        control.session(p.report.host, CONTROL_WAIT_MS),
        waitFor(() => p.agent!.controlError !== undefined || !p.agent!.running, CONTROL_WAIT_MS).then(() => undefined),
      ]);
      const late = session ?? (await control.session(p.report.host, 200));
      if (!late) {
        p.report.control = { ok: false, address, error: p.agent.controlError ?? `the check did not connect within ${CONTROL_WAIT_MS / 1000}s` };
        return;
      }
      p.session = late;
      p.report.control = { ok: true, address };
      const ready = await late.ready(CONTROL_WAIT_MS);
      if (!ready) {
        p.report.address = { interface: undefined, address: undefined, error: 'the check did not say which address it binds', ports: [] };
        return;
      }
      p.report.address = { interface: ready.interface, address: ready.address, ports: ready.ports, ...(ready.error ? { error: ready.error } : {}) };
      p.ports = ready.ports;
    }),
  );
}

function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const tick = (): void => {
      if (done() || Date.now() >= deadline) resolve();
      else setTimeout(tick, 50);
    };
    tick();
  });
}

function listening(people: Participant[]): Participant[] {
  return people.filter((p) => p.session && p.ports.length > 0 && p.report.address?.address !== undefined);
}

async function probePhase(people: Participant[], probeMs: number): Promise<ProbeResult[]> {
  const ready = listening(people);
  if (ready.length < 2) return [];
  const results = await Promise.all(
    ready.map(async (p) => {
      const targets: ProbeTarget[] = ready
        .filter((q) => q !== p)
        .flatMap((q) => q.ports.map((port) => ({ host: q.report.host, address: q.report.address!.address!, port })));
      const reply = await p.session!.request<Extract<ControlReply, { t: 'probed' }>>({ t: 'probe', targets, timeoutMs: probeMs }, probeMs + REPLY_SLACK_MS);
      if (!reply) {
        return targets.map((t): ProbeResult => ({ from: p.report.host, to: t.host, address: t.address, port: t.port, ok: false, failure: 'error', error: `${p.report.host} did not report its probes in time`, ms: probeMs }));
      }
      return reply.results.map((r): ProbeResult => ({
        from: p.report.host,
        to: r.host,
        address: r.address,
        port: r.port,
        ok: r.ok,
        ...(r.failure ? { failure: r.failure as ProbeResult['failure'] } : {}),
        ...(r.error ? { error: r.error } : {}),
        ms: r.ms,
      }));
    }),
  );
  return results.flat();
}

interface LinkPair {
  from: Participant;
  to: Participant;
  port: number;
}

/** The rounds of directed links between the hosts that listen, each over a port its probe reached (an unreachable pair is reported already). */
function linkPairs(people: Participant[], probes: readonly ProbeResult[]): LinkPair[][] {
  const ready = listening(people);
  return linkRounds(ready.length).map((phase) =>
    phase.flatMap(([i, j]) => {
      const from = ready[i]!;
      const to = ready[j]!;
      const port = to.ports.find((pt) => probes.some((p) => p.from === from.report.host && p.to === to.report.host && p.port === pt && p.ok));
      // Two names of one machine talk over its loopback: nothing to learn about the network.
      const oneMachine = from.report.info !== undefined && from.report.info.identity === to.report.info?.identity;
      return port === undefined || oneMachine ? [] : [{ from, to, port }];
    }),
  );
}

async function measure(pair: LinkPair, pings: number, ms: number): Promise<LinkResult> {
  const target = { host: pair.to.report.host, address: pair.to.report.address!.address!, port: pair.port };
  const timeoutMs = ms + 2 * REPLY_SLACK_MS;
  const r = await pair.from.session!.request<Extract<ControlReply, { t: 'linked' }>>({ t: 'link', target, pings, ms, timeoutMs }, timeoutMs + REPLY_SLACK_MS);
  const base = { from: pair.from.report.host, to: pair.to.report.host, port: pair.port };
  if (!r) return { ...base, ok: false, error: `no result within ${((timeoutMs + REPLY_SLACK_MS) / 1000).toFixed(0)}s` };
  if (!r.ok) return { ...base, ok: false, error: r.error ?? 'no measurement' };
  return { ...base, ok: true, ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}), ...(r.bytes !== undefined && r.seconds ? { bytes: r.bytes, bytesPerSecond: r.bytes / r.seconds } : {}) };
}

/** Latency of every link at once while no bulk data flows, then bandwidth round by round. */
async function linkPhases(people: Participant[], probes: readonly ProbeResult[], linkMs: number): Promise<LinkResult[]> {
  const phases = linkPairs(people, probes);
  const latency = await Promise.all(phases.flat().map((pair) => measure(pair, PINGS, 0)));
  const links: LinkResult[] = [];
  for (const phase of phases) {
    for (const bulk of await Promise.all(phase.map((pair) => measure(pair, 0, linkMs)))) {
      const rtt = latency.find((l) => l.from === bulk.from && l.to === bulk.to);
      links.push(rtt && !rtt.ok ? rtt : { ...bulk, ...(rtt?.rttMs !== undefined ? { rttMs: rtt.rttMs } : {}) });
    }
  }
  return links;
}
