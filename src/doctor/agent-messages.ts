/**
 * What the doctor's agent (the check run on each host) and the coordinator (on the launching
 * machine) say to each other. The agent prints AgentInfo on stdout as one AGENT_INFO_PREFIX line (so
 * the login part is known even when nothing else works), then talks JSON lines over its
 * authenticated control connection back to the coordinator.
 */
export const AGENT_INFO_PREFIX = '@@ringtrain-doctor ';
export const DOCTOR_PROTOCOL = 'ringtrain-doctor/1';

/** Environment the coordinator gives the agent (the token comes on stdin, as for a rank). */
export const AGENT_ENV = {
  /** host:port of the coordinator's control server (the launcher's stand-in for the rendezvous). */
  control: 'RINGTRAIN_DOCTOR_CONTROL',
  /** The host's name as the host list gives it, so messages and MACs name it the same everywhere. */
  host: 'RINGTRAIN_DOCTOR_HOST',
  /** The agent exits by itself this many ms after it started, whatever happens. */
  lifetimeMs: 'RINGTRAIN_DOCTOR_LIFETIME_MS',
  /** Same names and meaning as in the rank contract. */
  iface: 'RINGTRAIN_IFACE',
  portRange: 'RINGTRAIN_PORT_RANGE',
  token: 'RINGTRAIN_TOKEN',
} as const;

export interface AgentInfo {
  ringtrain: string;
  node: string;
  nodeNapiVersion: number;
  platform: string;
  arch: string;
  hostname: string;
  /** Which machine this is (boot id, IPC and network namespace): two host names, one machine. */
  identity: string;
  cpus: number;
  cwd: string;
  addon: {
    ok: boolean;
    error?: string;
    prebuilt?: boolean;
    buildSystem?: string;
    napiVersion?: number;
    cuda?: boolean;
  };
  /** GPUs the CUDA addon sees; null when the addon has no CUDA path (or the probe failed). */
  gpus: { index: number; name: string }[] | null;
  gpuNote?: string;
}

/** Target of a probe or a link test: a host's listener. */
export interface ProbeTarget {
  host: string;
  address: string;
  port: number;
}

/** Coordinator -> agent: a request (answered with its id) ... */
export type AgentRequest =
  | { t: 'probe'; targets: ProbeTarget[]; timeoutMs: number }
  | { t: 'link'; target: ProbeTarget; pings: number; ms: number; timeoutMs: number };

/** ... or the end. */
export type ControlRequest = (AgentRequest & { id: number }) | { t: 'bye' };

/** Agent -> coordinator. */
export type ControlReply =
  | {
      t: 'ready';
      interface: string | undefined;
      address: string | undefined;
      error?: string;
      ports: number[];
      /** Every non-internal interface of the host, for the messages. */
      interfaces: { name: string; address: string }[];
    }
  | { t: 'probed'; id: number; results: { host: string; address: string; port: number; ok: boolean; failure?: string; error?: string; ms: number }[] }
  | { t: 'linked'; id: number; ok: boolean; error?: string; rttMs?: number; bytes?: number; seconds?: number };
