/**
 * --host-discovery-script: a command the launcher runs every few seconds that prints the hosts
 * available now, one `host:slots` (or hostfile-style `host slots=N`, or bare `host`) per line.
 * Empty output means no hosts. A run that hangs, fails or prints something else is reported and
 * its previous answer kept. Owns the script's process only; what to do with hosts is the launcher's.
 */
import { spawn } from 'node:child_process';
import { parseHostfile, type HostEntry } from './hostfile.js';

export const DEFAULT_DISCOVERY_INTERVAL_S = 3;
export const DISCOVERY_TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 64 * 1024;

/** Runs the script once: its hosts, or an Error saying what was wrong. */
export function runDiscoveryScript(script: string, timeoutMs = DISCOVERY_TIMEOUT_MS): Promise<HostEntry[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, { shell: true, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    let settled = false;
    const finish = (e: Error | undefined, hosts?: HostEntry[]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(hosts!);
    };
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      finish(new Error(`did not finish within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.length > MAX_OUTPUT) {
        killGroup();
        finish(new Error(`printed more than ${MAX_OUTPUT} bytes`));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-500)));
    child.on('error', (e) => finish(new Error(`could not be run: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code !== 0) {
        finish(new Error(`${signal ? `was killed by ${signal}` : `exited with code ${code}`}${err.trim() ? `: ${err.trim().split('\n').at(-1)}` : ''}`));
        return;
      }
      if (out.trim() === '') {
        finish(undefined, []);
        return;
      }
      try {
        finish(undefined, parseHostfile(out, 'the host discovery script\'s output'));
      } catch (e) {
        finish(new Error(`printed something that is not a host list (${(e as Error).message})`));
      }
    });
  });
}

/** Runs the script every `intervalMs` and hands each good answer to `onHosts`. */
export class HostDiscovery {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError = '';

  constructor(
    private readonly script: string,
    private readonly intervalMs: number,
    private readonly onHosts: (hosts: HostEntry[]) => void,
    private readonly warn: (message: string) => void,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
  }

  private async tick(): Promise<void> {
    try {
      const hosts = await runDiscoveryScript(this.script);
      if (this.lastError) this.warn(`host discovery script ${this.script} works again`);
      this.lastError = '';
      if (!this.stopped) this.onHosts(hosts);
    } catch (e) {
      const message = (e as Error).message;
      // Said once per kind of failure, not every few seconds.
      if (message !== this.lastError) this.warn(`warning: host discovery script ${this.script} ${message}; keeping its previous answer`);
      this.lastError = message;
    }
    this.schedule();
  }
}
