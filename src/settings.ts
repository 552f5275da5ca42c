/**
 * The one table of ringtrain's tuning settings: for each, its init() option, its environment
 * variable, its default, how it is parsed, and whether it is job-wide. The rank contract resolves
 * them once (option, else variable, else default) and everything below reads the result: the
 * native core gets them through its options and reads no environment of its own, the tfjs layer
 * takes its defaults from `comm.settings`, `ringtrain info` prints them.
 *
 * Job-wide settings change what goes over the wire (how a call is cut into segments and pieces,
 * which algorithm runs), so every rank must use the same value: the rendezvous compares them and
 * refuses a job whose ranks disagree (settingsDisagreement). Per-rank ones (timeouts, spinning,
 * the tfjs bucket sizes, which ranks already cross-check) may differ.
 * A later shared-memory transport and any algorithm switch belong here as job-wide settings.
 */
import { RingtrainError } from './errors.js';
import { formatSize, parseCount, parseSize } from './sizes.js';

/** The effective values a communicator runs with. */
export interface Settings {
  /** Every blocking step (connect, rendezvous, each collective) fails after this long without progress. */
  timeoutMs: number;
  /** A collective that has waited this long for a peer prints a warning naming it. */
  stallWarningMs: number;
  /** Pipeline segment of the ring, in bytes. */
  segmentBytes: number;
  /** All-reduces of at most this many bytes use recursive doubling instead of the ring. */
  smallBytes: number;
  /** All-reduces larger than this go round the ring in pieces of this size; 0: one pass. */
  pieceBytes: number;
  /** How long a small exchange retries (yielding) before it sleeps in poll(), in microseconds. */
  spinUs: number;
  /** tfjs DistributedOptimizer: largest fused gradient bucket on the wire, in bytes. */
  fusionBytes: number;
  /** tfjs DistributedOptimizer: buckets travel as all-reduces of at most this many bytes; 0: one per bucket. */
  pipelineBytes: number;
}

export type SettingName = keyof Settings;

export interface SettingSpec {
  name: SettingName;
  env: string;
  /** `bytes` takes K/M/G suffixes (src/sizes.ts); `integer` a plain count (of ms or us). */
  kind: 'bytes' | 'integer';
  min: number;
  /** `job`: must be equal on every rank (checked at the rendezvous). */
  scope: 'job' | 'rank';
  /** The default, given the settings resolved before this one (the table is resolved in order). */
  fallback: (earlier: Readonly<Partial<Settings>>) => number;
  unit: string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { name: 'timeoutMs', env: 'RINGTRAIN_TIMEOUT_MS', kind: 'integer', min: 1, scope: 'rank', fallback: () => 120_000, unit: 'ms' },
  {
    name: 'stallWarningMs',
    env: 'RINGTRAIN_STALL_WARNING_MS',
    kind: 'integer',
    min: 1,
    scope: 'rank',
    fallback: (s) => Math.min(30_000, s.timeoutMs!),
    unit: 'ms',
  },
  { name: 'segmentBytes', env: 'RINGTRAIN_SEGMENT_BYTES', kind: 'bytes', min: 1, scope: 'job', fallback: () => 1 << 20, unit: 'bytes' },
  // The crossover measured on 1 Gbit/s links with 4 ranks; about 8 x latency x bandwidth.
  { name: 'smallBytes', env: 'RINGTRAIN_SMALL_BYTES', kind: 'bytes', min: 0, scope: 'job', fallback: () => 32 << 10, unit: 'bytes' },
  { name: 'pieceBytes', env: 'RINGTRAIN_PIECE_BYTES', kind: 'bytes', min: 0, scope: 'job', fallback: () => 8 << 20, unit: 'bytes' },
  { name: 'spinUs', env: 'RINGTRAIN_SPIN_US', kind: 'integer', min: 0, scope: 'rank', fallback: () => 50, unit: 'us' },
  { name: 'fusionBytes', env: 'RINGTRAIN_FUSION_BYTES', kind: 'bytes', min: 1, scope: 'rank', fallback: () => 64 << 20, unit: 'bytes' },
  { name: 'pipelineBytes', env: 'RINGTRAIN_PIPELINE_BYTES', kind: 'bytes', min: 0, scope: 'rank', fallback: () => 1 << 20, unit: 'bytes' },
];

function spec(name: SettingName): SettingSpec {
  return SETTINGS.find((s) => s.name === name)!;
}

/** A setting's default when nothing earlier in the table changes it. */
export function settingDefault(name: SettingName): number {
  return spec(name).fallback(resolveSettings({}, {}));
}

export function settingEnv(name: SettingName): string {
  return spec(name).env;
}

/** The job-wide subset, as the rendezvous compares it. */
export type JobSettings = Partial<Record<SettingName, number>>;

function settingError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: ${message}`);
}

function parseEnv(spec: SettingSpec, raw: string): number {
  try {
    const value = spec.kind === 'integer' ? parseCount(raw, spec.env, spec.min) : parseSize(raw, spec.env);
    if (value < spec.min) throw new Error(`${spec.env}='${raw}' must be at least ${spec.min} byte${spec.min === 1 ? '' : 's'}`);
    return value;
  } catch (e) {
    throw settingError((e as Error).message);
  }
}

function checkOption(spec: SettingSpec, value: number): number {
  if (!Number.isSafeInteger(value) || value < spec.min) {
    throw settingError(`${spec.name} must be an integer >= ${spec.min}, got ${value}`);
  }
  return value;
}

/** Each setting from `options`, else from `env` (empty counts as unset), else its default. */
export function resolveSettings(options: Readonly<Partial<Settings>>, env: NodeJS.ProcessEnv): Settings {
  const out: Partial<Settings> = {};
  for (const spec of SETTINGS) {
    const option = options[spec.name];
    const raw = env[spec.env];
    if (option !== undefined) out[spec.name] = checkOption(spec, option);
    else if (raw !== undefined && raw !== '') out[spec.name] = parseEnv(spec, raw);
    else out[spec.name] = spec.fallback(out);
  }
  return out as Settings;
}

export function jobSettings(settings: Readonly<Settings>): JobSettings {
  const out: JobSettings = {};
  for (const spec of SETTINGS) if (spec.scope === 'job') out[spec.name] = settings[spec.name];
  return out;
}

/**
 * The first job-wide setting on which a rank differs from rank 0, as a message naming both ranks,
 * the setting and its variable; undefined when all agree. `byRank[r]` is rank r's job settings.
 */
export function settingsDisagreement(byRank: readonly (JobSettings | undefined)[]): string | undefined {
  const reference = byRank[0] ?? {};
  for (let rank = 1; rank < byRank.length; rank++) {
    const theirs = byRank[rank] ?? {};
    for (const spec of SETTINGS) {
      if (spec.scope !== 'job' || theirs[spec.name] === reference[spec.name]) continue;
      const show = (v: number | undefined): string => (v === undefined ? 'nothing' : String(v));
      return (
        `job-wide setting ${spec.name} (${spec.env}) differs between ranks: rank ${rank} has ${show(theirs[spec.name])}, ` +
        `rank 0 has ${show(reference[spec.name])}; set it to the same value on every rank`
      );
    }
  }
  return undefined;
}

export interface SettingReport {
  name: SettingName;
  value: number;
  unit: string;
  env: string;
  source: 'environment' | 'default';
  scope: 'job' | 'rank';
}

/** Every setting as this environment resolves it, and where its value came from (for `ringtrain info`). */
export function settingsReport(env: NodeJS.ProcessEnv): SettingReport[] {
  const settings = resolveSettings({}, env);
  return SETTINGS.map((s) => ({
    name: s.name,
    value: settings[s.name],
    unit: s.unit,
    env: s.env,
    source: env[s.env] !== undefined && env[s.env] !== '' ? 'environment' : 'default',
    scope: s.scope,
  }));
}

export function formatSettingsReport(rows: readonly SettingReport[]): string {
  const lines = ['settings (init() options win over these variables)'];
  for (const r of rows) {
    const value = r.unit === 'bytes' ? formatSize(r.value) : `${r.value} ${r.unit}`;
    const where = `${r.source === 'environment' ? `from ${r.env}` : `default; ${r.env}`}, ${r.scope === 'job' ? 'job-wide' : 'per rank'}`;
    lines.push(`  ${r.name.padEnd(14)} ${value.padEnd(10)} (${where})`);
  }
  return lines.join('\n');
}
