/**
 * Host lists: Open MPI hostfiles (`host slots=N`), Horovod hostfiles and `-H` lists (`host:N`), bare
 * hosts (one slot), `user@host`, IPv6 literals (bare, or `[addr]` / `[addr]:N`), `#` comments.
 * A host named twice is one host with the slots added up, placed where it was first named.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { RingtrainError } from '../errors.js';

export interface HostEntry {
  /** Name or address, without brackets or user. */
  host: string;
  /** Login name for ssh, from `user@host`. */
  user: string | undefined;
  slots: number;
  /** Where it was first named, for messages: `hosts.txt:3`, `-H` or `local machine`. */
  origin: string;
}

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', message);
}

const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function parseSlots(text: string, where: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 1_000_000) {
    throw argumentError(`${where}: ${what} must be a whole number >= 1, got '${text}'`);
  }
  return Number(text);
}

/** Parses `[user@]host`, `[user@]host:N`, `[v6]`, `[v6]:N` or a bare IPv6 literal; `slots` undefined when not given. */
export function parseHostSpec(spec: string, where: string): { host: string; user: string | undefined; slots: number | undefined } {
  let rest = spec;
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) throw argumentError(`${where}: '${user}' in '${spec}' is not a valid user name`);
  }
  let host: string;
  let slotsText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1]!;
    slotsText = bracketed[2];
    if (!net.isIPv6(host)) throw argumentError(`${where}: '[${host}]' is not an IPv6 address`);
  } else if ((rest.match(/:/g) ?? []).length >= 2) {
    // Two or more colons without brackets can only be a bare IPv6 literal; its slots go in slots=N.
    host = rest;
    if (!net.isIPv6(host)) throw argumentError(`${where}: '${rest}' is not an IPv6 address (write [addr]:N to give slots)`);
  } else {
    const colon = rest.indexOf(':');
    host = colon >= 0 ? rest.slice(0, colon) : rest;
    slotsText = colon >= 0 ? rest.slice(colon + 1) : undefined;
    if (!HOSTNAME.test(host)) throw argumentError(`${where}: '${host}' is not a valid host name or address`);
  }
  const slots = slotsText === undefined ? undefined : parseSlots(slotsText, where, `the slot count in '${spec}'`);
  return { host, user, slots };
}

function key(entry: { host: string; user: string | undefined }): string {
  return `${entry.user ?? ''}@${entry.host.toLowerCase()}`;
}

/** Adds up the slots of hosts named more than once, keeping first-named order. */
export function mergeHosts(entries: readonly HostEntry[]): HostEntry[] {
  const merged = new Map<string, HostEntry>();
  for (const e of entries) {
    const k = key(e);
    const prior = merged.get(k);
    if (prior) prior.slots += e.slots;
    else merged.set(k, { ...e });
  }
  return [...merged.values()];
}

/** Parses a hostfile's text; every error names `fileName` and the line. */
export function parseHostfile(text: string, fileName: string): HostEntry[] {
  const entries: HostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = `${fileName}:${i + 1}`;
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [spec, ...fields] = line.split(/\s+/);
    const parsed = parseHostSpec(spec!, where);
    let slots = parsed.slots;
    for (const field of fields) {
      const kv = /^([A-Za-z_-]+)=(.*)$/.exec(field);
      if (!kv) {
        throw argumentError(`${where}: unexpected '${field}' after the host (expected 'host', 'host slots=N' or 'host:N')`);
      }
      const name = kv[1]!.toLowerCase();
      if (name === 'slots') {
        if (slots !== undefined) throw argumentError(`${where}: slots given twice for '${spec}'`);
        slots = parseSlots(kv[2]!, where, 'slots');
      } else if (name === 'max_slots' || name === 'max-slots') {
        parseSlots(kv[2]!, where, name); // Open MPI's oversubscription cap: accepted, and ringtrain never oversubscribes
      } else {
        throw argumentError(`${where}: unknown field '${kv[1]}' (known: slots=N, max_slots=N)`);
      }
    }
    entries.push({ host: parsed.host, user: parsed.user, slots: slots ?? 1, origin: where });
  }
  if (entries.length === 0) throw argumentError(`${fileName}: no hosts in the hostfile`);
  return mergeHosts(entries);
}

/** Parses a `-H a:2,b:2,[::1]:4` list. */
export function parseHostList(list: string, what = '-H'): HostEntry[] {
  const entries: HostEntry[] = [];
  for (const item of list.split(',')) {
    const spec = item.trim();
    if (spec === '') throw argumentError(`${what} '${list}': empty host in the list`);
    const parsed = parseHostSpec(spec, `${what} '${spec}'`);
    entries.push({ host: parsed.host, user: parsed.user, slots: parsed.slots ?? 1, origin: what });
  }
  if (entries.length === 0) throw argumentError(`${what}: no hosts given`);
  return mergeHosts(entries);
}

export async function readHostfile(path: string): Promise<HostEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw argumentError(`${path}: cannot read the hostfile (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseHostfile(text, path);
}

/** `host`, `user@host`, `[v6]`, as ssh and messages want it. */
export function formatHost(entry: { host: string; user: string | undefined }): string {
  return `${entry.user ? `${entry.user}@` : ''}${entry.host}`;
}
