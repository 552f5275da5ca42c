/**
 * Runs one elastic job through the real launcher (dist/cli.js) and follows it line by line: the
 * ranks' READY/STEP/RESET/RESUMED/RESULT lines (examples/mnist-elastic.mjs --json) and the
 * launcher's own messages, so a test can kill workers at chosen steps and check what happened.
 */
import { spawn } from 'node:child_process';
import { ROOT } from './helpers/ranks.js';

export interface Line {
  at: number;
  worker: number | undefined;
  kind: string;
  data: Record<string, unknown>;
  text: string;
}

export interface ElasticRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  lines: Line[];
  output: string;
  /** The launcher was killed by the harness: a hang. */
  hung: boolean;
}

export interface ElasticJob {
  done: Promise<ElasticRun>;
  /** Resolves with the first line matching, or undefined when the job ended first. */
  waitFor(match: (l: Line) => boolean): Promise<Line | undefined>;
  /** kill -9 of a worker (by its READY pid); returns Date.now() of the kill. */
  kill(worker: number, signal?: NodeJS.Signals): number;
  lines: Line[];
}

const TAGGED = /^\[(\d+)\] (READY|STEP|RESET|RESUMED|RESULT) (\{.*\})$/;

export function startElasticJob(launcherArgs: string[], command: string[], env: Record<string, string> = {}, killAfterMs = 240_000): ElasticJob {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['dist/cli.js', ...launcherArgs, '--', ...command], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  const watchers: { match: (l: Line) => boolean; resolve: (l: Line | undefined) => void }[] = [];
  let output = '';
  const feed = (stream: NodeJS.ReadableStream): void => {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output += chunk;
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = TAGGED.exec(text);
        let line: Line;
        if (m) {
          const data = JSON.parse(m[3]!) as Record<string, unknown>;
          line = { at: Date.now(), worker: Number(m[1]), kind: m[2]!, data, text };
        } else {
          line = { at: Date.now(), worker: undefined, kind: 'text', data: {}, text };
        }
        lines.push(line);
        for (const w of [...watchers]) {
          if (w.match(line)) {
            watchers.splice(watchers.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
  };
  feed(child.stdout);
  feed(child.stderr);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, killAfterMs);
  const done = new Promise<ElasticRun>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const w of watchers.splice(0)) w.resolve(undefined);
      resolve({ code, signal, wallMs: Date.now() - t0, lines, output, hung });
    });
  });
  return {
    done,
    lines,
    waitFor(match) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => watchers.push({ match, resolve }));
    },
    kill(worker, signal = 'SIGKILL') {
      const ready = lines.find((l) => l.kind === 'READY' && l.worker === worker);
      if (!ready) throw new Error(`worker ${worker} has not said READY`);
      const at = Date.now();
      try {
        process.kill(Number(ready.data.pid), signal);
      } catch {
        // already gone
      }
      return at;
    },
  };
}

export function linesOf(run: ElasticRun, kind: string): Line[] {
  return run.lines.filter((l) => l.kind === kind);
}
