/** What `ringtrain-bench --train` measures (parsed by bench-cli.ts; no TensorFlow.js needed here). */
export interface TrainBenchOptions {
  model: 'mlp' | 'cnn';
  /** Input shape of one sample: [784] for an MLP, [28, 28, 1] for a CNN. */
  input: number[];
  /** MLP: hidden layer widths. */
  layers: number[];
  /** CNN: filters of each conv layer, each followed by 2x2 max pooling. */
  filters: number[];
  kernel: number;
  classes: number;
  /** Per rank, the same in the 1-process and the n-rank phase (weak scaling). */
  batch: number;
  steps: number;
  warmupSteps: number;
  /** The 1-process and n-rank phases alternate this many times (machine noise hits both alike). */
  repeat: number;
  compression: 'none' | 'fp16';
}
