/** Model sizes and the minibatch each is measured at (same table as the PyTorch reference). */
export const LEARNER_SIZES = {
  tiny: { dModel: 64, nLayers: 2, nHeads: 4, batch: 32, seqLen: 128 },
  small: { dModel: 256, nLayers: 4, nHeads: 4, batch: 16, seqLen: 256 },
  medium: { dModel: 512, nLayers: 8, nHeads: 8, batch: 16, seqLen: 256 },
  large: { dModel: 1024, nLayers: 12, nHeads: 16, batch: 8, seqLen: 512 },
} as const;
