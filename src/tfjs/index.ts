/**
 * ringtrain/tfjs — data-parallel training for TensorFlow.js models.
 *
 * Depends on @tensorflow/tfjs-core only (a peer): the same code runs whether the application
 * loads @tensorflow/tfjs (pure JS), @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu.
 */
export {
  DistributedOptimizer,
  DEFAULT_FUSION_BYTES,
  FUSION_BYTES_ENV,
  DEFAULT_PIPELINE_BYTES,
  PIPELINE_BYTES_ENV,
} from './distributed-optimizer.js';
export type { DistributedOptimizerOptions, NamedTensor } from './distributed-optimizer.js';
export type { GradientCompression, ReducerStats } from './gradient-reducer.js';
export { broadcastModel, broadcastVariables } from './broadcast-model.js';
export type { BroadcastOptions, BroadcastModelOptions } from './broadcast-model.js';
export { averageModel } from './average-model.js';
export type { AverageModelOptions } from './average-model.js';
export { shardDataset } from './shard-dataset.js';
export type { DatasetLike, LazyIteratorLike, ShardDatasetOptions } from './shard-dataset.js';
export { shardArrays } from './shard-arrays.js';
export { shardIndices, shardLength } from './shard-plan.js';
export type { ShardOptions, ShardRemainder } from './shard-plan.js';
export { LocalSGD } from './local-sgd.js';
export type { LocalSGDOptions } from './local-sgd.js';
export { MetricAverageCallback, averageLogs } from './metric-average-callback.js';
export { allreduceTensor, broadcastTensor, averageMetrics } from './tensor-collectives.js';
export type { TensorReduceOptions, TensorBroadcastOptions } from './tensor-collectives.js';
export type { MetricAverageCallbackOptions } from './metric-average-callback.js';
export { BroadcastCallback } from './broadcast-callback.js';
export type { BroadcastCallbackOptions } from './broadcast-callback.js';
export { RankCallback } from './rank-callback.js';
export type { CallbackLogs, LogValue } from './rank-callback.js';
export type { LayerVariableLike, ModelLike } from './model-like.js';
export { PipelineModel } from './pipeline-model.js';
export type {
  PipelineModelOptions,
  PipelineCompileArgs,
  PipelineFitArgs,
  PipelineHistory,
  PipelineCallback,
  PipelineLogs,
  PipelineStats,
} from './pipeline-model.js';
export type { LayerLike, ChainModelLike, PipelineModelSource } from './layer-chain.js';
export type { LossOrMetricFn } from './pipeline-losses.js';
export { pipelineSchedule, predictedBubble, simulateSchedule } from './pipeline-schedule.js';
export type { PipelineScheduleKind, PipelineStep, SimulationCosts, SimulationResult } from './pipeline-schedule.js';
export { balancedRanges, rangesFromSplitAt, microBatchRows } from './pipeline-split.js';
export type { LayerRange } from './pipeline-split.js';
export { ElasticState } from './elastic-state.js';
export type { ElasticField, ElasticStateInit, ResetCallback } from './elastic-state.js';
export { runElastic, isRecoverable } from './run-elastic.js';
export type { ElasticEvent, RunElasticOptions } from './run-elastic.js';
