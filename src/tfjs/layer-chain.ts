/**
 * The chain of layers a PipelineModel cuts into stages, taken from a tf.Sequential, a functional
 * LayersModel whose layers form a chain (one input, one output, every layer fed by the one
 * before), or a builder function that returns layers not yet built (so a rank builds only what
 * it keeps). Structural types, as in model-like.ts: ringtrain/tfjs does not import tfjs-layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RingtrainError } from '../errors.js';
import type { LayerVariableLike } from './model-like.js';

export type ShapeLike = readonly (number | null)[];

/** A tfjs-layers Layer, as far as the pipeline is concerned. */
export interface LayerLike {
  readonly name: string;
  getClassName(): string;
  readonly built: boolean;
  readonly trainableWeights: readonly LayerVariableLike[];
  readonly nonTrainableWeights: readonly LayerVariableLike[];
  /** Eager call on a concrete tensor; builds the layer on first use. */
  apply(inputs: tf.Tensor, kwargs?: { training?: boolean }): unknown;
  computeOutputShape(inputShape: (number | null)[]): unknown;
  countParams(): number;
  /** Weight regularizers' penalty functions; calculateLosses() evaluates them (new scalars). */
  readonly losses?: readonly unknown[];
  calculateLosses?(): tf.Scalar[];
  /** Set on a Sequential's first layer (inputShape / batchInputShape). */
  readonly batchInputShape?: ShapeLike;
  readonly inboundNodes?: readonly { readonly inboundLayers: readonly LayerLike[]; readonly outputShapes?: unknown }[];
}

/** A tf.Sequential or functional LayersModel, structurally. */
export interface ChainModelLike {
  readonly layers: readonly LayerLike[];
  readonly inputs: readonly { readonly shape: ShapeLike }[];
  readonly outputs: readonly { readonly sourceLayer?: LayerLike }[];
}

/** What PipelineModel accepts as its model. */
export type PipelineModelSource = ChainModelLike | (() => ChainModelLike | readonly LayerLike[]);

export interface LayerChain {
  layers: readonly LayerLike[];
  /** Shape of the chain's input, batch dimension null. */
  inputShape: ShapeLike;
  /** Output shape of every layer, batch dimension null. */
  outputShapes: ShapeLike[];
  /** Parameter count of every layer, or null where the layer is not built (a builder's layer no rank needed). */
  paramCounts: (number | null)[];
  /** True when the layers came from a builder and are built only where kept. */
  lazy: boolean;
}

function argumentError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: PipelineModel: ${message}`);
}

function isModel(value: unknown): value is ChainModelLike {
  return typeof value === 'object' && value !== null && Array.isArray((value as ChainModelLike).layers) && Array.isArray((value as ChainModelLike).inputs);
}

function isLayer(value: unknown): value is LayerLike {
  return typeof value === 'object' && value !== null && typeof (value as LayerLike).apply === 'function' && typeof (value as LayerLike).getClassName === 'function';
}

function singleShape(shape: unknown, layer: LayerLike): ShapeLike {
  if (!Array.isArray(shape) || (shape.length > 0 && Array.isArray(shape[0]))) {
    throw argumentError(`layer '${layer.name}' (${layer.getClassName()}) has several outputs; a pipeline needs a chain of single-output layers`);
  }
  return shape as ShapeLike;
}

/** Refuses what the pipeline would otherwise silently get wrong. */
function checkSupported(layers: readonly LayerLike[]): void {
  layers.forEach((layer, i) => {
    if ((layer as { activityRegularizer?: unknown }).activityRegularizer != null) {
      throw argumentError(`layer ${i} '${layer.name}' has an activity regularizer, which PipelineModel does not support (weight regularizers are supported)`);
    }
  });
}

/** The model's non-input layers, checked to form a chain. */
function chainOfModel(model: ChainModelLike): LayerChain {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw argumentError(`the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; a pipeline needs one of each`);
  }
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (layers.length === 0) throw argumentError('the model has no layers');
  layers.forEach((layer, i) => {
    const nodes = layer.inboundNodes ?? [];
    if (nodes.length !== 1) {
      throw argumentError(`layer ${i} '${layer.name}' is called ${nodes.length} times in the model; a pipeline needs every layer used once`);
    }
    const from = nodes[0]!.inboundLayers;
    const expected = i === 0 ? undefined : layers[i - 1];
    const fine = from.length === 1 && (expected === undefined ? from[0]!.getClassName() === 'InputLayer' : from[0] === expected);
    if (!fine) {
      throw argumentError(
        `the layers do not form a chain: layer ${i} '${layer.name}' takes ${from.map((l) => `'${l.name}'`).join(', ') || 'no input'}` +
          (expected ? ` instead of layer ${i - 1} '${expected.name}'` : ' instead of the model input') +
          ' (branches, skip connections and several inputs cannot be pipelined)',
      );
    }
  });
  if (model.outputs[0]!.sourceLayer !== undefined && model.outputs[0]!.sourceLayer !== layers[layers.length - 1]) {
    throw argumentError('the model output is not the last layer of the chain');
  }
  checkSupported(layers);
  return {
    layers,
    inputShape: model.inputs[0]!.shape,
    outputShapes: layers.map((l) => singleShape((l as unknown as { outputShape: unknown }).outputShape, l)),
    paramCounts: layers.map((l) => l.countParams()),
    lazy: false,
  };
}

/** Builds `layer` on a one-row zero input (to learn its parameter count) when not yet built. */
function buildLayer(layer: LayerLike, inputShape: ShapeLike): void {
  if (layer.built) return;
  if (inputShape.slice(1).some((d) => d === null)) {
    throw argumentError(`layer '${layer.name}' has an input shape with unknown dimensions ${JSON.stringify(inputShape)}; give splitAt, or a model`);
  }
  tf.tidy(() => {
    layer.apply(tf.zeros([1, ...(inputShape.slice(1) as number[])]));
  });
}

/** Layers from a builder: shapes from computeOutputShape; only the layers `keep` selects are built. */
function chainOfLayers(layers: readonly LayerLike[], keep: (index: number) => boolean): LayerChain {
  if (layers.length === 0) throw argumentError('the builder returned no layers');
  layers.forEach((l, i) => {
    if (!isLayer(l)) throw argumentError(`the builder's element ${i} is not a tfjs layer`);
  });
  checkSupported(layers);
  const inputShape = layers[0]!.batchInputShape;
  if (inputShape === undefined || inputShape === null) {
    throw argumentError(`the builder's first layer '${layers[0]!.name}' needs an inputShape (or batchInputShape)`);
  }
  const outputShapes: ShapeLike[] = [];
  const paramCounts: (number | null)[] = [];
  let shape: ShapeLike = inputShape;
  layers.forEach((layer, i) => {
    if (keep(i)) buildLayer(layer, shape);
    paramCounts.push(layer.built ? layer.countParams() : null);
    shape = singleShape(layer.computeOutputShape([...shape]), layer);
    outputShapes.push(shape);
  });
  return { layers, inputShape, outputShapes, paramCounts, lazy: true };
}

function disposeWeights(layer: LayerLike): void {
  for (const w of [...layer.trainableWeights, ...layer.nonTrainableWeights]) {
    const v = w as LayerVariableLike & { dispose?: () => void };
    try {
      v.dispose?.();
    } catch {
      // Already disposed (a weight shared between layers): nothing left to free.
    }
  }
}

/** The model itself, or the builder's result. */
export function resolveSource(source: PipelineModelSource): ChainModelLike | readonly LayerLike[] {
  const built = typeof source === 'function' ? source() : source;
  if (isModel(built) || Array.isArray(built)) return built;
  throw argumentError('model must be a tf.Sequential, a functional LayersModel, or a function returning one or an array of layers');
}

/** The chain of a model (all layers built), checked. */
export function modelChain(model: ChainModelLike): LayerChain {
  return chainOfModel(model);
}

/** Builds each layer alone on the shape before it, counts its parameters and frees it at once. */
export function countLayerParams(layers: readonly LayerLike[]): number[] {
  const probe = chainOfLayers(layers, () => false);
  let shape = probe.inputShape;
  return layers.map((layer, i) => {
    buildLayer(layer, shape);
    const n = layer.countParams();
    disposeWeights(layer);
    shape = probe.outputShapes[i]!;
    return n;
  });
}

/** A builder's layers, building only those `keep` selects. */
export function lazyChain(layers: readonly LayerLike[], keep: (index: number) => boolean): LayerChain {
  return chainOfLayers(layers, keep);
}

/** Frees the weights of layers this rank does not keep (a model given whole holds every stage's). */
export function disposeLayersOutside(chain: LayerChain, start: number, end: number): void {
  chain.layers.forEach((layer, i) => {
    if ((i < start || i >= end) && layer.built) disposeWeights(layer);
  });
}
