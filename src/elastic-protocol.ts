/**
 * The elastic control channel between the launcher (`ringtrain --min-np`) and each rank: one source
 * of truth for its environment variables and messages. The launcher owns the worlds; a rank asks
 * for the next one whenever it has left its current world (a failed collective, a re-formation for
 * hosts that joined) and gets its rank, size and a fresh rendezvous address and token.
 *
 * Wire: newline-delimited JSON over TCP, like the rendezvous. The launcher opens with a nonce; the
 * rank's hello carries HMAC(job token, nonce, worker id); each world the launcher sends carries
 * HMAC(job token, the rank's nonce, world), so neither side has to trust an unauthenticated peer.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** host:port of the launcher's control server; set only for elastic jobs. */
export const ELASTIC_ADDR_ENV = 'RINGTRAIN_ELASTIC_ADDR';
/** The worker's id in this job: stable across worlds (its rank in the first world; joiners count on). */
export const ELASTIC_ID_ENV = 'RINGTRAIN_ELASTIC_ID';
/** How long a rank waits for its next world before giving up, in ms. */
export const ELASTIC_TIMEOUT_ENV = 'RINGTRAIN_ELASTIC_TIMEOUT_MS';
/** Default for --elastic-timeout: survivors must have left a broken world and joined the next within this. */
export const DEFAULT_ELASTIC_TIMEOUT_S = 30;
export const ELASTIC_PROTOCOL = 'ringtrain-elastic/1';

/** One world as told to one rank. */
export interface WorldAssignment {
  /** Generation: increases with every world the launcher forms (or tries to). */
  gen: number;
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  /** host:port of this generation's rendezvous. */
  addr: string;
  /** This generation's token: links and joins of older worlds cannot match it. */
  token: string;
}

/** Rank -> launcher. */
export type RankMessage =
  | { t: 'hello'; id: number; nonce: string; mac: string }
  /** "I have left world `after` (or never joined one: -1); give me the next." */
  | { t: 'next'; after: number; reason: string };

/** Launcher -> rank. */
export type LauncherMessage =
  | { t: 'hello'; protocol: string; nonce: string }
  | ({ t: 'world'; mac: string } & WorldAssignment)
  /** Workers wait to join: re-form at the next commit. */
  | { t: 'grow'; waiting: number }
  | { t: 'stop'; reason: string }
  /** World `gen` is given up (a member was lost while it formed or ran): stop waiting on it. */
  | { t: 'abort'; gen: number; reason: string };

export function elasticMac(token: string, ...parts: (string | number)[]): string {
  return createHmac('sha256', token).update(['elastic', ...parts].join('|')).digest('hex');
}

export function macMatches(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function worldDigest(w: WorldAssignment): string {
  return [w.gen, w.rank, w.size, w.localRank, w.localSize, w.addr, w.token].join(',');
}
