// Moved to ./helpers/processes.ts (the one process harness); kept so tests written against this path still run.
export { WORKER, describeRuns, errorOf, startJob, stderrLineAt, type Job, type JobOptions, type RankRun } from './helpers/processes.js';
