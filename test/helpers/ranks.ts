// Moved to ./processes.ts (the one process harness); kept so tests written against this path still run.
export { ROOT, expectAllOk, freePort, runRanks, type RankResult, type RunRanksOptions } from './processes.js';
