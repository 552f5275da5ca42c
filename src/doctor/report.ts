/**
 * What `ringtrain doctor` found: one record per host, per probe and per measured link, plus the
 * findings drawn from them. This is the `--json` output (DOCTOR_REPORT_VERSION) and what the table
 * is rendered from; the agent's own messages are in agent-messages.ts.
 */
import type { AgentInfo } from './agent-messages.js';

export const DOCTOR_REPORT_VERSION = 1;

/** How bad a finding is. error: the job would fail; warn: it would run slowly or may fail; note: worth knowing. */
export type Severity = 'error' | 'warn' | 'note';

export type CheckName = 'login' | 'addresses' | 'reachability' | 'links' | 'slots';

export interface Finding {
  severity: Severity;
  check: CheckName;
  /** The host it is about (as named in the host list), when it is about one. */
  host?: string;
  /** The directed pair it is about (`from` opened the connection / sent the data). */
  pair?: { from: string; to: string; port?: number };
  message: string;
  /** What to do about it. */
  fix?: string;
}

export interface LoginResult {
  ok: boolean;
  /** Seconds from starting ssh (or the local process) to the agent's report. */
  seconds: number;
  /** Why not, when !ok: said in the words the job would have met. */
  error?: string;
  /** The check never answered within its deadline (the host hangs). */
  hung?: boolean;
}

export interface AddressResult {
  /** The interface the ranks would bind on, and its address: what the other hosts are told. */
  interface: string | undefined;
  address: string | undefined;
  error?: string;
  /** Ports of --port-range (or any, without one) the agent listens on for the probes. */
  ports: number[];
}

export interface HostReport {
  /** As named in the host list (`user@host`). */
  host: string;
  /** Where it was named (`hosts.txt:3`, `-H`). */
  origin: string;
  /** Every name the host list gives this machine, as the launcher merges them (`name (origin)`). */
  names: string[];
  /** Ranks the job would place there (its slots, or fewer when -np cuts the list short). */
  ranks: number;
  local: boolean;
  login: LoginResult;
  /** The agent's own report (undefined when it never ran). */
  info?: AgentInfo;
  /** Whether the agent reached the launcher's address within the port range, as the ranks' rendezvous connection would. */
  control?: { ok: boolean; address: string; error?: string };
  address?: AddressResult;
}

/** One authenticated TCP connection attempt from one host to another host's listener. */
export interface ProbeResult {
  from: string;
  to: string;
  address: string;
  port: number;
  ok: boolean;
  /** refused: RST (REJECT rule or nothing there); timeout: no answer (DROP rule); auth: answered, not by the doctor. */
  failure?: 'refused' | 'timeout' | 'unreachable' | 'auth' | 'error';
  error?: string;
  ms: number;
}

/** One direction of one link, measured by the sender. */
export interface LinkResult {
  from: string;
  to: string;
  port: number;
  ok: boolean;
  error?: string;
  /** The lowest of 20 round trips of a small message (what the link adds, not the hosts' scheduling). */
  rttMs?: number;
  /** Bytes delivered per second, counted by the receiver's acknowledgement. */
  bytesPerSecond?: number;
  bytes?: number;
}

export interface DoctorReport {
  version: typeof DOCTOR_REPORT_VERSION;
  /** `doctor` or `preflight` (login and reachability only). */
  mode: 'doctor' | 'preflight';
  hostsWhat: string;
  portRange: [number, number] | null;
  networkInterface: string | null;
  /** The launcher's address and port the agents connected back to (the rendezvous' stand-in). */
  launcherAddress: string | null;
  hosts: HostReport[];
  probes: ProbeResult[];
  links: LinkResult[];
  findings: Finding[];
  verdict: 'pass' | 'warn' | 'fail';
  /** 0 all passed, 1 something would make the job fail or run slowly. */
  exitCode: 0 | 1;
  seconds: number;
}
