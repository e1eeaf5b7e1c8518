/**
 * Step 4: train the decoder on cached features (teacher forcing, Adam, doubly stochastic
 * attention penalty, gradient clipping, learning-rate decay and early stopping on dev CIDEr-D,
 * checkpoints every few minutes). Run it again after an interruption and it resumes.
 *   npm run pipeline:train -- --epochs=20 --workers=2
 * Outputs: checkpoints/<name>/{latest,best}/ and runs/<name>/{history.json,curves.png}.
 */
import { parseConfig, runStep } from "./lib/config.ts";
import { train, TRAIN_DEFAULTS } from "./lib/trainer.ts";

runStep(async () => {
  await train(parseConfig(TRAIN_DEFAULTS));
});
