/**
 * The POSIX sh script that supervises one rank on its host, local or remote alike:
 *   /bin/sh -c RANK_WRAPPER ringtrain-rank env NAME=VALUE... command args...
 *
 * - Reads the job token as the first line of stdin, so it never appears on a command line (`ps`).
 * - Runs the command in a session (process group) of its own, with stdin from /dev/null. The
 *   command's first stdout line is STARTED_MARKER with its pid: the launcher strips it, and knows the
 *   rank is running (and, over ssh, that the connection and login worked).
 * - Keeps watching stdin: when it reaches EOF (the launcher closed it, the launcher died, or the ssh
 *   connection dropped, which sshd turns into EOF even without a tty) it sends SIGTERM to the
 *   command's whole group, then SIGKILL after 5 s if anything is left.
 * - When the command exits, whatever it left in its group is terminated too, so nothing outlives the
 *   rank and holds the ssh session open. The wrapper exits with the command's status (128+N when
 *   the command was killed by signal N).
 */
export const STARTED_MARKER_PREFIX = '@@ringtrain-started ';
export const STARTED_MARKER_SUFFIX = '@@';

/** The pid in a STARTED_MARKER line, or undefined when `line` is not one. */
export function parseStartedMarker(line: string): number | undefined {
  if (!line.startsWith(STARTED_MARKER_PREFIX) || !line.endsWith(STARTED_MARKER_SUFFIX)) return undefined;
  const pid = Number(line.slice(STARTED_MARKER_PREFIX.length, line.length - STARTED_MARKER_SUFFIX.length));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Exit status of the wrapper when stdin held no token line. */
export const NO_TOKEN_EXIT = 70;

// One line, statements ended by `;` or `&`: the remote login shell may be csh, which cannot take a
// newline inside a quoted word.
export const RANK_WRAPPER = [
  `IFS= read -r RINGTRAIN_TOKEN || { echo "ringtrain: no job token on stdin" >&2; exit ${NO_TOKEN_EXIT}; };`,
  'export RINGTRAIN_TOKEN;',
  'exec 3<&0;',
  'S=; command -v setsid >/dev/null 2>&1 && S=setsid;',
  `$S /bin/sh -c 'printf "${STARTED_MARKER_PREFIX}%s${STARTED_MARKER_SUFFIX}\\n" "$$"; exec "$@"' ringtrain-exec "$@" </dev/null 3<&- &`,
  'c=$!;',
  "trap 'kill -TERM -$c $c 2>/dev/null' TERM INT HUP;",
  '{ while read -r _ <&3; do :; done; kill -TERM -$c $c; n=0;',
  'while [ $n -lt 25 ]; do kill -0 -$c || kill -0 $c || exit 0; sleep 0.2; n=$((n+1)); done;',
  'kill -KILL -$c $c; } >/dev/null 2>&1 &',
  'w=$!;',
  'exec 3<&-;',
  // The launcher names the signal itself; the shell's "Terminated" would only be noise.
  'wait $c 2>/dev/null; r=$?;',
  'while kill -0 $c 2>/dev/null; do wait $c 2>/dev/null; r=$?; done;',
  'kill -TERM -$c 2>/dev/null && sleep 0.5 && kill -KILL -$c 2>/dev/null;',
  'kill $w 2>/dev/null;',
  'exit $r',
].join(' ');
