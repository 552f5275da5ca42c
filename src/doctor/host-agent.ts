/**
 * The agent on one host as the coordinator sees it: started exactly as the launcher starts a rank
 * (RankProcess: ssh with the launcher's options, the rank wrapper, the token on stdin), its stdout
 * watched for the agent's report, its failure to start described in the job's words, and stopped
 * the launcher's way (EOF, then signals) so nothing is left on the host.
 */
import { formatHost, type HostEntry } from '../launcher/hostfile.js';
import { RankProcess, type RankExit } from '../launcher/rank-process.js';
import { localRankArgv, shellQuote, sshFailureHint, sshRankArgv, type SshSettings } from '../launcher/ssh-command.js';
import { AGENT_INFO_PREFIX, type AgentInfo } from './agent-messages.js';
import type { LoginResult } from './report.js';

const STOP_EOF_MS = 2_000;
const STOP_TERM_MS = 1_000;
const STOP_KILL_MS = 1_000;

export interface HostAgentOptions {
  host: HostEntry;
  index: number;
  local: boolean;
  /** The agent's command on the host: `node <ringtrain>/dist/cli.js doctor --agent`. */
  command: readonly string[];
  cwd: string;
  env: readonly (readonly [string, string])[];
  ssh: Omit<SshSettings, 'verbose'>;
  token: string;
  localEnv: NodeJS.ProcessEnv;
  verbose: (message: string) => void;
}

export class HostAgent {
  readonly name: string;
  /** The agent's report, or undefined when it exited or hung first. */
  info: AgentInfo | undefined;
  /** What the agent said when it could not reach the coordinator. */
  controlError: string | undefined;
  private readonly process: RankProcess;
  private readonly startedAt = Date.now();
  private infoAt: number | undefined;
  private readonly stdoutLines: string[] = [];
  private readonly infoWaiters: (() => void)[] = [];
  private exit: RankExit | undefined;

  constructor(private readonly options: HostAgentOptions) {
    this.name = formatHost(options.host);
    const o = options;
    const argv = o.local
      ? localRankArgv(o.env, o.command)
      : sshRankArgv({ ...o.ssh, verbose: false }, this.name, o.cwd, o.env, o.command);
    o.verbose(`doctor on ${this.name}${o.local ? ' (local)' : ' (ssh)'}: ${argv.map(shellQuote).join(' ')}`);
    let pending = '';
    this.process = new RankProcess({
      placement: { rank: o.index, host: o.host, localRank: 0, localSize: 1 },
      remote: !o.local,
      argv,
      cwd: o.cwd,
      env: o.local ? o.localEnv : process.env,
      token: o.token,
      tagOutput: false,
      logFile: undefined,
      stdout: (text) => {
        pending += text;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          this.onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      },
      stderr: (text) => o.verbose(`${this.name}: ${text.trimEnd()}`),
    });
    this.process.start();
    void this.process.exited.then((e) => {
      this.exit = e;
      this.wake();
    });
  }

  private onLine(line: string): void {
    if (!line.startsWith(AGENT_INFO_PREFIX)) {
      if (this.stdoutLines.length < 5) this.stdoutLines.push(line);
      return;
    }
    try {
      const m = JSON.parse(line.slice(AGENT_INFO_PREFIX.length)) as { t: string; info?: AgentInfo; error?: string };
      if (m.t === 'info' && m.info) {
        this.info = m.info;
        this.infoAt = Date.now();
      } else if (m.t === 'control-error') this.controlError = m.error ?? 'unknown error';
    } catch {
      // A half line from a dying agent: the exit says what happened.
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.infoWaiters.splice(0)) w();
  }

  /** Waits for the agent's report (or its exit) up to `timeoutMs`; then says how the login went. */
  async login(timeoutMs: number): Promise<LoginResult> {
    if (this.info === undefined && this.exit === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.infoWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const seconds = ((this.infoAt ?? Date.now()) - this.startedAt) / 1000;
    if (this.info) return { ok: true, seconds };
    if (this.exit) return { ok: false, seconds, error: this.describeExit(this.exit) };
    const where = this.process.hasStarted ? 'logged in, but the check did not answer' : this.options.local ? 'did not start' : 'ssh did not connect';
    return { ok: false, seconds, hung: true, error: `${where} within ${(timeoutMs / 1000).toFixed(0)}s: the host hangs` };
  }

  /** The agent's failure in the words the job would have met, with what to do. */
  private describeExit(exit: RankExit): string {
    const stderr = this.process.lastStderr.join(' ').replace(/\s+/g, ' ').trim();
    const said = stderr ? `: ${stderr}` : '';
    const code = exit.code ?? 1;
    const cwd = this.options.cwd;
    if (!exit.started) {
      if (!this.options.local && code === 255) return `ssh to ${this.name} failed${said}${sshFailureHint(stderr, this.name)}`;
      if (/can't cd|cd: .*(No such file|not found|can't)|No such file or directory/i.test(stderr)) {
        return `the working directory ${cwd} does not exist there${said} (the launcher runs every rank in the same directory as on this machine)`;
      }
      return `the remote shell exited with code ${code}${said}`;
    }
    if (code === 127) {
      return `'${this.options.command[0]}' was not found in the PATH of a non-interactive ssh login${said} (install Node.js there, or put it on the PATH that sshd gives: ~/.ssh/environment or /etc/environment)`;
    }
    if (/Cannot find module|ERR_MODULE_NOT_FOUND/.test(stderr)) {
      return `ringtrain is not installed at ${this.options.command[1]}${said} (install it at the same path on every host)`;
    }
    if (exit.signal || code > 128) return `the check was killed (${exit.signal ?? `exit code ${code}`})${said}`;
    return `the check exited with code ${code}${said}`;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Stops the agent the launcher's way; resolves once it is gone (or after the last signal). */
  async stop(): Promise<void> {
    const gone = (ms: number): Promise<unknown> =>
      Promise.race([this.process.exited, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
    this.process.closeStdin();
    await gone(STOP_EOF_MS);
    if (!this.process.running) return;
    this.process.signal('SIGTERM');
    await gone(STOP_TERM_MS);
    if (!this.process.running) return;
    this.process.signal('SIGKILL');
    await gone(STOP_KILL_MS);
  }
}
