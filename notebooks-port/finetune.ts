/**
 * Step 5: fine-tune. Continues from the best cross-entropy checkpoint with self-critical sequence
 * training (Rennie et al. 2017): sample 5 captions per image, reward each by its CIDEr-D against the
 * image's training references, and raise the likelihood of captions that beat the image's other
 * samples. This optimises the metric directly, instead of word-by-word likelihood. The GloVe
 * vectors, frozen during training, are unfrozen here. Dev scores are measured before the first
 * epoch and after each, so whether it helped is measured, not assumed (see the model card).
 *   npm run pipeline:finetune -- --init=checkpoints/sat-centernet/best
 */
import { parseConfig, runStep } from "./lib/config.ts";
import { train, TRAIN_DEFAULTS } from "./lib/trainer.ts";

const defaults = {
  ...TRAIN_DEFAULTS,
  name: "sat-centernet-ft",
  init: "checkpoints/sat-centernet/best",
  scst: 5, // samples per image
  flip: false,
  glove: false, // the word vectors come from the checkpoint
  trainEmbeddings: true,
  dropout: 0, // sampled captions must come from the same network the gradient is taken through
  lr: 1e-4,
  lrDecay: 0.5,
  epochs: 3,
  patience: 2,
  saveEvery: 50,
};

runStep(async () => {
  await train(parseConfig(defaults));
});
