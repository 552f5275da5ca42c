/**
 * Pipeline schedules as pure data: for each stage, the ordered list of forward and backward
 * micro-batch steps it runs in one training step (one batch). PipelineModel executes these lists
 * with non-blocking sends and blocking receives; `simulateSchedule` runs the same lists on a unit
 * clock, which is how the tests prove a schedule deadlock-free and measure its bubble.
 *
 * - GPipe: every stage runs all M forwards, then all M backwards. A stage holds the inputs of all
 *   M micro-batches at once.
 * - 1F1B (PipeDream-Flush): stage s runs min(K-1-s, M) warm-up forwards, then alternates one
 *   forward and one backward, then drains the remaining backwards. A stage holds at most K-s
 *   micro-batch inputs. Same bubble as GPipe, (K-1)/(M+K-1), with less memory.
 */
import { RingtrainError } from '../errors.js';

export type PipelineScheduleKind = 'gpipe' | '1f1b';

export interface PipelineStep {
  kind: 'forward' | 'backward';
  microBatch: number;
}

function checkCounts(stages: number, microBatches: number): void {
  if (!Number.isInteger(stages) || stages < 1) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: pipeline: stages must be an integer >= 1, got ${stages}`);
  }
  if (!Number.isInteger(microBatches) || microBatches < 0) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: pipeline: microBatches must be an integer >= 0, got ${microBatches}`);
  }
}

const forward = (microBatch: number): PipelineStep => ({ kind: 'forward', microBatch });
const backward = (microBatch: number): PipelineStep => ({ kind: 'backward', microBatch });

function gpipeStage(microBatches: number): PipelineStep[] {
  const steps: PipelineStep[] = [];
  for (let m = 0; m < microBatches; m++) steps.push(forward(m));
  for (let m = 0; m < microBatches; m++) steps.push(backward(m));
  return steps;
}

function oneForwardOneBackwardStage(stage: number, stages: number, microBatches: number): PipelineStep[] {
  const warmup = Math.min(stages - 1 - stage, microBatches);
  const steps: PipelineStep[] = [];
  for (let m = 0; m < warmup; m++) steps.push(forward(m));
  for (let i = 0; i < microBatches - warmup; i++) {
    steps.push(forward(warmup + i));
    steps.push(backward(i));
  }
  for (let m = microBatches - warmup; m < microBatches; m++) steps.push(backward(m));
  return steps;
}

/** Every stage's step list, indexed by stage. */
export function pipelineSchedule(kind: PipelineScheduleKind, stages: number, microBatches: number): PipelineStep[][] {
  checkCounts(stages, microBatches);
  if (kind !== 'gpipe' && kind !== '1f1b') {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: pipeline: schedule must be 'gpipe' or '1f1b', got '${String(kind)}'`);
  }
  return Array.from({ length: stages }, (_, s) =>
    kind === 'gpipe' ? gpipeStage(microBatches) : oneForwardOneBackwardStage(s, stages, microBatches),
  );
}

/** The idle fraction GPipe and 1F1B predict for uniform stages: (K-1)/(M+K-1). */
export function predictedBubble(stages: number, microBatches: number): number {
  checkCounts(stages, microBatches);
  return microBatches === 0 ? 0 : (stages - 1) / (microBatches + stages - 1);
}

export interface SimulationCosts {
  /** Time of one micro-batch forward on one stage. Default 1. */
  forward?: number;
  /** Time of one micro-batch backward on one stage. Default 1. */
  backward?: number;
}

export interface SimulationResult {
  /** Time from the first step's start to the last step's end. */
  makespan: number;
  /** 1 - busy / (stages x makespan). */
  bubble: number;
  /** Per stage: the most micro-batches whose forward ran and whose backward did not yet. */
  peakInFlight: number[];
}

/**
 * Runs the step lists on a unit clock: F(s,m) needs F(s-1,m), B(s,m) needs B(s+1,m) (the last
 * stage's B needs its own F), sends never block and each stage runs its list in order. Throws
 * ERR_RINGTRAIN_INTERNAL if the lists deadlock or are not a complete schedule.
 */
export function simulateSchedule(schedule: readonly (readonly PipelineStep[])[], costs: SimulationCosts = {}): SimulationResult {
  const tf = costs.forward ?? 1;
  const tb = costs.backward ?? 1;
  const stages = schedule.length;
  const done = new Map<string, number>(); // "F:s:m" -> finish time
  const next = schedule.map(() => 0);
  const free = schedule.map(() => 0);
  const inFlight = schedule.map(() => 0);
  const peakInFlight = schedule.map(() => 0);
  let busy = 0;
  let remaining = schedule.reduce((n, steps) => n + steps.length, 0);
  while (remaining > 0) {
    let progressed = false;
    for (let s = 0; s < stages; s++) {
      const step = schedule[s]![next[s]!];
      if (step === undefined) continue;
      const dep =
        step.kind === 'forward'
          ? s === 0 ? 0 : done.get(`F:${s - 1}:${step.microBatch}`)
          : s === stages - 1 ? done.get(`F:${s}:${step.microBatch}`) : done.get(`B:${s + 1}:${step.microBatch}`);
      if (dep === undefined) continue;
      const cost = step.kind === 'forward' ? tf : tb;
      const end = Math.max(free[s]!, dep) + cost;
      done.set(`${step.kind === 'forward' ? 'F' : 'B'}:${s}:${step.microBatch}`, end);
      free[s] = end;
      busy += cost;
      inFlight[s]! += step.kind === 'forward' ? 1 : -1;
      peakInFlight[s] = Math.max(peakInFlight[s]!, inFlight[s]!);
      next[s]!++;
      remaining--;
      progressed = true;
    }
    if (!progressed) {
      throw new RingtrainError('ERR_RINGTRAIN_INTERNAL', `ringtrain: pipeline schedule deadlocks (stage positions ${next.join(',')})`);
    }
  }
  const makespan = Math.max(0, ...free);
  return { makespan, bubble: makespan === 0 ? 0 : 1 - busy / (stages * makespan), peakInFlight };
}
