// Moved to ../helpers/processes.ts (the one process harness); kept so tests written against this path still run.
export {
  CLI,
  ROOT,
  alive,
  hasCommand,
  runCli,
  runCommand,
  startCli,
  tagged,
  waitUntil,
  type CliOptions,
  type CliRun,
  type LauncherRankReport,
  type RunningCli,
} from '../helpers/processes.js';
