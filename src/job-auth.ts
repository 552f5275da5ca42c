/**
 * Proof of the job token without sending it: each side answers the other's fresh nonce with an
 * HMAC-SHA256 keyed by the token. The rendezvous and the doctor's probes speak it; the purpose word
 * (first part) keeps a MAC made for one message from being replayed as another.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export function jobMac(token: string, ...parts: (string | number)[]): string {
  return createHmac('sha256', token).update(parts.join('|')).digest('hex');
}

/** Constant-time comparison of two MACs (different lengths are simply unequal). */
export function macEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}
