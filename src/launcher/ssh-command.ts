/**
 * The argv that starts one rank: the rank wrapper run directly for a local rank, or over ssh as
 * `cd <cwd> && exec /bin/sh -c <wrapper> ringtrain-rank env <contract> <command>` for a remote one.
 * The job token is never part of either: it goes through the wrapper's stdin.
 */
import { RANK_WRAPPER } from './rank-wrapper.js';

export interface SshSettings {
  port: number | undefined;
  identityFile: string | undefined;
  /** Passed as `-o OPTION`, before ringtrain's defaults so that they win (ssh keeps an option's first value). */
  options: readonly string[];
  /** Seconds ssh may take to connect. */
  connectTimeoutS: number;
  verbose: boolean;
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function envWords(env: readonly (readonly [string, string])[]): string[] {
  return env.map(([name, value]) => `${name}=${value}`);
}

/** argv for a local rank: run with the job's cwd and environment, in a session of its own. */
export function localRankArgv(env: readonly (readonly [string, string])[], command: readonly string[]): string[] {
  return ['/bin/sh', '-c', RANK_WRAPPER, 'ringtrain-rank', 'env', ...envWords(env), ...command];
}

/** The command line the remote login shell runs. */
export function remoteCommandLine(cwd: string, env: readonly (readonly [string, string])[], command: readonly string[]): string {
  const words = ['exec', '/bin/sh', '-c', RANK_WRAPPER, 'ringtrain-rank', 'env', ...envWords(env), ...command];
  return `cd ${shellQuote(cwd)} && ${words.map(shellQuote).join(' ')}`;
}

/** ssh's own options: never prompt (BatchMode), no tty, no X11, notice a dead host within ~15 s. */
export function sshOptions(settings: SshSettings): string[] {
  const args: string[] = [];
  for (const o of settings.options) args.push('-o', o);
  if (settings.port !== undefined) args.push('-p', String(settings.port));
  if (settings.identityFile !== undefined) args.push('-i', settings.identityFile);
  args.push(
    '-o', 'BatchMode=yes',
    '-o', `ConnectTimeout=${Math.max(1, Math.round(settings.connectTimeoutS))}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=3',
    '-o', `LogLevel=${settings.verbose ? 'INFO' : 'ERROR'}`,
    '-T', '-x',
  );
  return args;
}

/** argv for a remote rank. `target` is `host` or `user@host`. */
export function sshRankArgv(
  settings: SshSettings,
  target: string,
  cwd: string,
  env: readonly (readonly [string, string])[],
  command: readonly string[],
): string[] {
  return ['ssh', ...sshOptions(settings), target, remoteCommandLine(cwd, env, command)];
}

/** What to do about an ssh failure, from ssh's own words on stderr (' (...)', or '' when unknown). */
export function sshFailureHint(stderrText: string, host: string): string {
  if (/Permission denied|publickey|Too many authentication failures/i.test(stderrText)) {
    return ' (ringtrain needs passwordless ssh: set up keys, or pass --ssh-identity-file)';
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION/i.test(stderrText)) {
    return ` (add ${host}'s host key to known_hosts, e.g. ssh to it once, or pass --ssh-option StrictHostKeyChecking=accept-new)`;
  }
  if (/Could not resolve|Name or service not known/i.test(stderrText)) return ' (unknown host name)';
  if (/timed out|No route to host|Connection refused|unreachable/i.test(stderrText)) return ' (host unreachable, or no sshd on it)';
  return '';
}
