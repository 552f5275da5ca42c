/**
 * Noticing that the process that started the launcher is gone. Package managers (`npx`, `npm
 * exec`, `npm run`, yarn, pnpm) run the launcher under `sh -c`; a SIGTERM to them (what `timeout`,
 * supervisors and CI runners send) ends them and their shell but never reaches the launcher, which
 * would run on, re-parented, with every rank. So when its parent, or its parent shell's parent, is a
 * package manager, the launcher watches both; once either is gone the job stops.
 *
 * Only then, by default: a launcher started directly (`nohup ringtrain ... &`, a shell that exits)
 * keeps running when its parent goes, as `nohup` promises. Linux only (/proc); elsewhere nothing is
 * watched.
 */
import { readFileSync } from 'node:fs';

/** How often the starter is looked at: a few checks a second cost nothing next to a job. */
export const STARTER_POLL_MS = 250;

const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ksh', 'ash', 'busybox']);

interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  /** Clock ticks after boot: tells a process from a later one that got its pid. */
  startTime: string;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  return { comm, state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]! };
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    return '?';
  }
}

/** A package manager's command line: npm's process title (`npm exec ...`), or node running npm, yarn or pnpm. */
const PACKAGE_MANAGER = /(^|[/\s])(npm|npx|yarn|pnpm|pnpx|bun|bunx)(-cli)?(\.c?js)?(\s|$)/;

/** True when `command` (a process's command line) is a package manager. */
export function isPackageManager(command: string): boolean {
  return PACKAGE_MANAGER.test(command);
}

export interface Starter {
  pid: number;
  /** Its command line, for the message. */
  command: string;
}

/**
 * Watches the starter (the parent, and the parent's parent when the parent is a shell) and calls
 * `onGone` once, when one of them has exited (a zombie counts as exited), or this process was
 * re-parented. `when`: 'always', or 'package-manager' (only when one of them is a package
 * manager). Returns the function that stops watching; undefined when nothing is watched (not asked
 * for, or no /proc).
 */
export function watchStarter(
  onGone: (starter: Starter) => void,
  when: 'always' | 'package-manager',
  pollMs = STARTER_POLL_MS,
): (() => void) | undefined {
  const parentPid = process.ppid;
  const parent = procStat(parentPid);
  if (!parent) return undefined;
  const watched: (Starter & { startTime: string })[] = [{ pid: parentPid, command: commandLine(parentPid), startTime: parent.startTime }];
  const grand = SHELLS.has(parent.comm) && parent.ppid > 1 ? procStat(parent.ppid) : undefined;
  if (grand) watched.push({ pid: parent.ppid, command: commandLine(parent.ppid), startTime: grand.startTime });
  if (when === 'package-manager' && !watched.some((w) => isPackageManager(w.command))) return undefined;
  const timer = setInterval(() => {
    const gone =
      process.ppid !== parentPid
        ? watched[0]
        : watched.find((w) => {
            const now = procStat(w.pid);
            return !now || now.startTime !== w.startTime || now.state === 'Z' || now.state === 'X';
          });
    if (!gone) return;
    clearInterval(timer);
    onGone({ pid: gone.pid, command: gone.command });
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
