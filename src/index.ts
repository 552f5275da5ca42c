/**
 * ringtrain: ring all-reduce for data-parallel training across machines.
 *
 *   const comm = await init();
 *   await comm.allreduce(gradients, { op: 'avg' });
 */
export { init, currentCommunicator } from './init.js';
export { RingCommunicator, dtypeOf, shareOf } from './communicator.js';
export { RingtrainError, type RingtrainErrorCode } from './errors.js';
export { resolveContract, type RankContract } from './contract.js';
export { RendezvousServer, RendezvousClient, type JoinInfo, type RendezvousServerOptions } from './rendezvous.js';
export { Timeline, mergeTimelines, monotonicMicros, rankTimelinePath, timelineEnabled, traceSpan } from './timeline.js';
export { loadNative, type NativeBuildInfo, type NativeCudaInfo } from './native.js';
export { DeviceBuffer, cudaInfo } from './device.js';
export type { Communicator, CollectiveView, Dtype, InitOptions, P2pOptions, PeerInfo, ReduceOp, ReduceOptions } from './types.js';
