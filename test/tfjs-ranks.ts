// Moved to ./helpers/processes.ts (the one process harness); kept so tests written against this path still run.
export {
  FIXTURES,
  REPO,
  expectResults as expectAllOk,
  freePort,
  runFixtureRanks as runRanks,
  type FixtureOptions as RunOptions,
  type FixtureRun as RankRun,
} from './helpers/processes.js';
