/**
 * Architecture settings of the decoder: saved next to the trained weights (model/weights/config.json),
 * so loading never guesses sizes. Defaults were chosen for a 2-core CPU budget (see the model card).
 */
export interface DecoderConfig {
  /** Encoder that produced the features the weights were trained on. */
  encoder: string;
  /** Attention regions (h*w of the encoder grid) and channels per region. */
  grid: [number, number];
  featureDim: number;
  /** Vocabulary size including the 4 special tokens. */
  vocabSize: number;
  /** Word-vector size: 100 to start from GloVe 100-d. */
  embedDim: number;
  /** LSTM units. 512 is the Show-Attend-Tell size scaled down from 1800; most of the step cost is here. */
  hiddenDim: number;
  /** Size of the additive-attention MLP. The tanh over [batch, regions, attnDim] dominates per-step time, so keep it modest. */
  attnDim: number;
  /** Deep-output layer size (arctic-captions: tanh(L_h h + L_z z + E y) before the vocabulary projection). */
  outDim: number;
  /** Longest caption generated, in words. */
  maxLen: number;
  /**
   * Class scores the decoder reads besides the features (CenterNet's 80 COCO classes, model/detector.ts
   * classScores), projected once per image and added to every step's LSTM and deep-output input.
   * Absent or 0: a decoder of the features alone.
   */
  tags?: number;
  /**
   * Only in an exported model folder: the weight files (names without .bin) of decoders with this
   * architecture trained apart, decoded as an ensemble. Absent: the one file "decoder".
   */
  members?: string[];
}

export const DEFAULT_CONFIG: Omit<DecoderConfig, "encoder" | "grid" | "featureDim" | "vocabSize"> = {
  embedDim: 100,
  hiddenDim: 512,
  attnDim: 128,
  outDim: 256,
  maxLen: 20,
};
