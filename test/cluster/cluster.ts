/**
 * The 4-host test cluster (network namespaces rtl-h0..rtl-h3 at 10.78.0.1..4, sshd on each, the
 * root namespace at 10.78.0.254), made by cluster.sh for one test file and torn down after it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, ROOT } from '../helpers/processes.js';

export const CLUSTER_SCRIPT = path.join(ROOT, 'test/cluster/cluster.sh');
export const HOSTS = ['10.78.0.1', '10.78.0.2', '10.78.0.3', '10.78.0.4'];
export const ROOT_NS_ADDRESS = '10.78.0.254';

export interface Cluster {
  dir: string;
  /** Every host with 2 slots. */
  hostfile: string;
  /** ssh settings for ringtrain: the test key and known_hosts. */
  sshArgs: string[];
  /** The same with a key the hosts do not accept. */
  wrongKeyArgs: string[];
}

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the cluster cannot be built here, or undefined when it can. */
export function clusterUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces and sshd need root';
  if (!which('ip')) return 'iproute2 (ip) is not installed: apt-get install -y iproute2';
  if (!existsSync('/usr/sbin/sshd')) return 'openssh-server is not installed: apt-get install -y openssh-server';
  if (!which('ssh') || !which('ssh-keygen')) return 'the ssh client is not installed: apt-get install -y openssh-client';
  return undefined;
}

/** In CI the cluster tests must run; elsewhere they are skipped, saying why. */
export function skipCluster(): boolean {
  const reason = clusterUnavailable();
  if (reason === undefined) return false;
  if (process.env.CI === 'true') return false; // beforeAll fails loudly instead
  console.warn(`skipping the ssh cluster tests: ${reason}`);
  return true;
}

export function clusterUp(): Cluster {
  const reason = clusterUnavailable();
  if (reason !== undefined) throw new Error(`the launcher cluster tests cannot run: ${reason}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtl-cluster-'));
  execFileSync(CLUSTER_SCRIPT, ['up', dir], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
  const common = ['--ssh-option', 'IdentitiesOnly=yes', '--ssh-option', `UserKnownHostsFile=${dir}/known_hosts`, '--ssh-option', 'StrictHostKeyChecking=yes'];
  return {
    dir,
    hostfile: path.join(dir, 'hostfile'),
    sshArgs: [...common, '--ssh-identity-file', path.join(dir, 'id_ed25519')],
    wrongKeyArgs: [...common, '--ssh-identity-file', path.join(dir, 'wrong_ed25519')],
  };
}

export function clusterDown(cluster: Cluster | undefined): void {
  execFileSync(CLUSTER_SCRIPT, ['down', cluster?.dir ?? os.tmpdir()], { stdio: 'inherit', timeout: 60_000 });
  if (cluster) rmSync(cluster.dir, { recursive: true, force: true });
}

/** Processes in host i's namespace other than its sshd (what a job left behind). */
export function leftovers(cluster: Cluster, host: number): number[] {
  const sshd = Number(readFileSync(path.join(cluster.dir, `sshd-${host}.pid`), 'utf8').trim());
  const out = execFileSync('ip', ['netns', 'pids', `rtl-h${host}`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number)
    .filter((pid) => pid !== sshd && alive(pid));
}

/** Describes every leftover process on every host, for an assertion message. */
export function describeLeftovers(cluster: Cluster): string {
  const lines: string[] = [];
  for (let i = 0; i < HOSTS.length; i++) {
    for (const pid of leftovers(cluster, i)) {
      let cmd = '?';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200);
      } catch {
        // gone meanwhile
      }
      lines.push(`rtl-h${i} pid ${pid}: ${cmd}`);
    }
  }
  return lines.join('\n');
}
