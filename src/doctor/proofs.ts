/**
 * The doctor's token proofs, one purpose word each (see job-auth.ts): an agent to the coordinator
 * and back, a prober to a listener and back. Both ends of each pair import them from here.
 */
import { jobMac } from '../job-auth.js';

export function agentMac(token: string, nonce: string, host: string): string {
  return jobMac(token, 'doctor-agent', nonce, host);
}

export function welcomeMac(token: string, clientNonce: string): string {
  return jobMac(token, 'doctor-welcome', clientNonce);
}

export function probeMac(token: string, nonce: string, from: string): string {
  return jobMac(token, 'doctor-probe', nonce, from);
}

export function probeOkMac(token: string, clientNonce: string): string {
  return jobMac(token, 'doctor-probe-ok', clientNonce);
}
