/**
 * `ringtrain doctor --agent`: the check run on each host, started through the launcher's own path
 * (ssh, rank wrapper, job token on stdin). It reports the installation on stdout, connects back to
 * the coordinator as a rank connects to the rendezvous, opens its probe listener where the ranks
 * would bind, and then does what the coordinator asks (probe these hosts, test this link) until it
 * says bye, the connection ends, or the agent's lifetime runs out: it never outlives its check.
 */
import os from 'node:os';
import { hostIdentity } from '../host-identity.js';
import { collectInfo, packageVersion } from '../installation.js';
import { interfaceAddress } from '../interfaces.js';
import { macEqual, newNonce } from '../job-auth.js';
import { parseHostPort, parsePortRange } from '../address.js';
import { AGENT_ENV, AGENT_INFO_PREFIX, type AgentInfo, type ControlReply, type ProbeTarget } from './agent-messages.js';
import { connectWithin, LineSocket, type Message } from './line-socket.js';
import { linkTest, probe } from './probe-client.js';
import { ProbeListener } from './probe-listener.js';
import { agentMac, welcomeMac } from './proofs.js';

const CONNECT_MS = 5_000;
const DEFAULT_LIFETIME_MS = 60_000;

function installation(): AgentInfo {
  const base = {
    ringtrain: packageVersion(),
    node: process.version,
    nodeNapiVersion: Number(process.versions.napi ?? 0),
    platform: process.platform,
    arch: process.arch,
    hostname: os.hostname(),
    identity: hostIdentity(),
    cpus: os.availableParallelism(),
    cwd: process.cwd(),
  };
  try {
    const info = collectInfo();
    const gpus = info.cuda && Array.isArray(info.cuda.gpus) ? info.cuda.gpus.map((g) => ({ index: g.index, name: g.name })) : null;
    const gpuNote = info.cudaNote ?? (info.cuda?.unavailableReason || undefined);
    return {
      ...base,
      addon: { ok: true, prebuilt: info.addon.prebuilt, buildSystem: info.addon.buildSystem, napiVersion: info.addon.napiVersion, cuda: info.addon.cuda },
      gpus,
      ...(gpuNote ? { gpuNote } : {}),
    };
  } catch (e) {
    return { ...base, addon: { ok: false, error: (e as Error).message.replace(/^ringtrain: /, '') }, gpus: null };
  }
}

function interfaceOf(address: string): string | undefined {
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    if (list?.some((a) => a.address.toLowerCase() === address.toLowerCase())) return name;
  }
  return undefined;
}

function externalInterfaces(): { name: string; address: string }[] {
  const out: { name: string; address: string }[] = [];
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && !a.address.toLowerCase().startsWith('fe80')) out.push({ name, address: a.address });
  }
  return out;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Connects to the coordinator and proves the token both ways. */
async function connectControl(control: string, host: string, token: string): Promise<LineSocket> {
  const { host: address, port } = parseHostPort(control, AGENT_ENV.control);
  const conn = new LineSocket(await connectWithin(address, port, CONNECT_MS));
  const hello = await conn.next(CONNECT_MS, 'greeting from the launcher');
  if (typeof hello.nonce !== 'string') throw new Error('the launcher address answered, but not as the doctor');
  const nonce = newNonce();
  conn.send({ t: 'agent', host, nonce, mac: agentMac(token, hello.nonce, host) });
  const welcome = await conn.next(CONNECT_MS, 'welcome from the launcher');
  if (welcome.t !== 'welcome' || typeof welcome.mac !== 'string' || !macEqual(welcome.mac, welcomeMac(token, nonce))) {
    throw new Error('the launcher did not prove the job token');
  }
  return conn;
}

function targetOf(v: unknown): ProbeTarget {
  const t = v as ProbeTarget;
  if (typeof t?.host !== 'string' || typeof t.address !== 'string' || typeof t.port !== 'number') throw new Error('malformed probe target');
  return t;
}

async function answer(conn: LineSocket, m: Message, host: string, token: string): Promise<void> {
  const id = Number(m.id);
  const timeoutMs = Math.max(100, Number(m.timeoutMs) || 3_000);
  if (m.t === 'probe' && Array.isArray(m.targets)) {
    const results = await Promise.all(m.targets.map((t) => probe(targetOf(t), host, token, timeoutMs)));
    const reply: ControlReply = { t: 'probed', id, results };
    conn.send(reply);
  } else if (m.t === 'link') {
    const r = await linkTest(targetOf(m.target), host, token, Math.max(0, Number(m.pings) || 0), Math.max(0, Number(m.ms) || 0), timeoutMs);
    const reply: ControlReply = { t: 'linked', id, ...r };
    conn.send(reply);
  }
}

/** Runs the agent to its end; returns the process exit code. */
export async function runAgent(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const lifetimeMs = Number(env[AGENT_ENV.lifetimeMs]) || DEFAULT_LIFETIME_MS;
  // Whatever else hangs, the agent goes away on its own.
  setTimeout(() => process.exit(3), lifetimeMs).unref();
  const host = env[AGENT_ENV.host] ?? os.hostname();
  const token = env[AGENT_ENV.token];
  const control = env[AGENT_ENV.control];
  say(`${AGENT_INFO_PREFIX}${JSON.stringify({ t: 'info', info: installation() })}`);
  if (!token || !control) {
    say(`${AGENT_INFO_PREFIX}${JSON.stringify({ t: 'control-error', error: 'started without a job token or a launcher address' })}`);
    return 2;
  }
  let conn: LineSocket;
  try {
    conn = await connectControl(control, host, token);
  } catch (e) {
    say(`${AGENT_INFO_PREFIX}${JSON.stringify({ t: 'control-error', error: (e as Error).message })}`);
    return 1;
  }

  const listener = new ProbeListener(token);
  let ready: ControlReply;
  const iface = env[AGENT_ENV.iface];
  try {
    // As init() does: the named interface, else the address the connection to the launcher left from.
    const address = iface ? interfaceAddress(iface) : conn.socket.localAddress!.replace(/^::ffff:/, '');
    const range = env[AGENT_ENV.portRange] ? parsePortRange(env[AGENT_ENV.portRange]!, AGENT_ENV.portRange) : undefined;
    const ports = await listener.listen(address, range);
    ready = { t: 'ready', interface: iface ?? interfaceOf(address), address, ports, interfaces: externalInterfaces() };
  } catch (e) {
    ready = { t: 'ready', interface: iface, address: undefined, error: (e as Error).message.replace(/^ringtrain: /, ''), ports: [], interfaces: externalInterfaces() };
  }
  conn.send(ready);

  try {
    for (;;) {
      const m = await conn.next(lifetimeMs, 'request');
      if (m.t === 'bye') break;
      void answer(conn, m, host, token).catch(() => undefined);
    }
  } catch {
    // The coordinator went away: so does the agent.
  } finally {
    listener.close();
    conn.close();
  }
  return 0;
}
