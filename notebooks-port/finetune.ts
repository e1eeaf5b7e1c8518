/**
 * Step 5: fine-tune. Training keeps the GloVe word vectors frozen (5 captions x 6,000 images is
 * little data for 254k embedding weights); fine-tuning unfreezes them and continues from the best
 * trained weights at a lower learning rate. It reports dev scores before and after, so whether it
 * helped is measured, not assumed.
 *   npm run pipeline:finetune -- --init=checkpoints/sat-centernet/best
 */
import { parseConfig, runStep } from "./lib/config.ts";
import { train, TRAIN_DEFAULTS } from "./lib/trainer.ts";

const defaults = {
  ...TRAIN_DEFAULTS,
  name: "sat-centernet-ft",
  init: "checkpoints/sat-centernet/best",
  trainEmbeddings: true,
  glove: false,
  lr: 1e-4,
  epochs: 4,
  patience: 2,
};

runStep(async () => {
  await train(parseConfig(defaults));
});
