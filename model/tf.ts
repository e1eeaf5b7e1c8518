/**
 * The one tfjs import, on the wasm backend (about 40x faster than the pure-JS cpu backend here).
 * tfjs-node is never used: its install script downloads libtensorflow, which offline machines
 * cannot do. initBackend() selects wasm once; every tfjs user in model/ goes through this file.
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
