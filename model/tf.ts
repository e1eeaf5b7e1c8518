/**
 * The one place that picks the tensor backend. tfjs-wasm is ~40x faster than the pure-JS
 * cpu backend here; tfjs-node would be faster still but cannot be installed offline, so it
 * is used only when it happens to be present.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

let ready: Promise<string> | undefined;

export function initBackend(): Promise<string> {
  ready ??= (async () => {
    if (tf.getBackend() !== "wasm") await tf.setBackend("wasm");
    await tf.ready();
    return tf.getBackend();
  })();
  return ready;
}

export { tf };
