/** Loading onnxruntime-node, the fast path for the encoder (onnx-encoder.ts) and the decoder (onnx-decoder.ts). */

/** onnxruntime-node, imported lazily (callers fall back to tfjs when it is missing). */
export async function importOnnxRuntime() {
  // onnxruntime-node >= 1.2x on Linux starts a telemetry client (uploads to a Microsoft collector,
  // leaves mat-debug-*.log and .ses files in $TMPDIR). A captioning studio has no business
  // phoning home, so it is switched off unless the user explicitly set the variable.
  process.env.ORT_DISABLE_TELEMETRY ??= "1";
  return import("onnxruntime-node");
}
