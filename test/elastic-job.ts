// Moved to ./helpers/processes.ts (the one process harness); kept so tests written against this path still run.
export { linesOf, startElasticJob, type ElasticJob, type ElasticRun, type Line } from './helpers/processes.js';
