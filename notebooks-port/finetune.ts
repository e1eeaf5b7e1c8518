/**
 * Step 5: fine-tune. Continues from the best cross-entropy checkpoint with self-critical sequence
 * training (Rennie et al. 2017): sample 5 captions per image, reward each by its CIDEr-D against the
 * image's training references, and raise the likelihood of captions that beat the image's other
 * samples. This optimises the metric directly, instead of word-by-word likelihood. Dev scores are
 * measured before the first epoch and after each, so whether it helped is measured, not assumed.
 * The learning rate is small on purpose: a fresh Adam moves every weight by about lr per step
 * whatever its gradient, and with these noisy rewards 1e-4 (word vectors unfrozen) made dev
 * CIDEr-D fall on an earlier model, while 2e-5 (word vectors frozen) raised it on the shipped one
 * (numbers in the model card).
 *   npm run pipeline:finetune -- --init=checkpoints/sat-combo/best
 */
import { parseConfig, runStep } from "./lib/config.ts";
import { train, TRAIN_DEFAULTS } from "./lib/trainer.ts";

const defaults = {
  ...TRAIN_DEFAULTS,
  name: "sat-combo-ft",
  init: "checkpoints/sat-combo/best",
  scst: 5, // samples per image
  flip: false,
  glove: false, // the word vectors come from the checkpoint
  trainEmbeddings: false,
  dropout: 0, // sampled captions must come from the same network the gradient is taken through
  lr: 2e-5,
  lrDecay: 0.5,
  epochs: 2,
  patience: 2,
  saveEvery: 50,
};

runStep(async () => {
  await train(parseConfig(defaults));
});
