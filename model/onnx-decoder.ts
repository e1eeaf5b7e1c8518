/**
 * The decoder's inference step as two small ONNX graphs run on onnxruntime-node: "start" (image
 * features -> attention keys and the initial LSTM state, once per image) and "step" (one word for
 * every beam). Same maths as decoder.ts imageState() and step(), which stay the reference
 * (test/onnx.test.ts checks that both give the same log-probabilities and captions).
 *
 * Why: at batch 1-10 a step is ~40 tiny ops; tfjs-wasm pays a fixed dispatch cost per op, while
 * onnxruntime runs the whole step in one native call. bench/caption.ts has the figures.
 */
import type { DecoderConfig } from "./config.ts";
import { importOnnxRuntime, INT32, modelProto, nodeProto, tensorProto, valueInfo, type Attr, type Pb } from "./onnx-proto.ts";
import type { DecoderRun, StepDecoder } from "./search.ts";
import type { tf } from "./tf.ts";
import type { NamedArray } from "./weights.ts";

/** Collects nodes and initializers; each weight is stored once however often it is used. */
class Graph {
  readonly nodes: Pb[] = [];
  readonly inits: Pb[] = [];
  private readonly added = new Set<string>();
  private k = 0;
  constructor(private readonly weights: Record<string, NamedArray>) {}

  weight(name: string): string {
    if (!this.added.has(name)) {
      const w = this.weights[name];
      if (!w) throw new Error(`decoder weights have no ${name}`);
      this.added.add(name);
      this.inits.push(tensorProto(name, w.shape, w.data));
    }
    return name;
  }

  ints(values: number[]): string {
    const name = `i64/${values.join("_")}`;
    if (!this.added.has(name)) {
      this.added.add(name);
      this.inits.push(tensorProto(name, [values.length], BigInt64Array.from(values, BigInt)));
    }
    return name;
  }

  /** Adds a node and returns its output names (fresh ones unless `names` are given). */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = 1, names?: string[]): string[] {
    const outs = names ?? Array.from({ length: outputs }, () => `t${this.k++}`);
    this.nodes.push(nodeProto(type, inputs, outs, attrs));
    return outs;
  }

  one(type: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    return this.op(type, inputs, attrs, 1, name ? [name] : undefined)[0];
  }
}

/** Builds the "start" and "step" models from the decoder's float32 weights. */
export function decoderToOnnx(weights: Record<string, NamedArray>, c: DecoderConfig): { start: Uint8Array; step: Uint8Array } {
  const { hiddenDim: H, attnDim: A, outDim: O, featureDim: D, vocabSize: V } = c;
  const L = c.grid[0] * c.grid[1];

  // start: feats [1, L, D] -> keys [1, L, A] = v W_a + b; [h0 | c0] = tanh(mean(v) W_init + b).
  const s = new Graph(weights);
  s.one("Add", [s.one("MatMul", ["feats", s.weight("attnFeat")]), s.weight("attnBias")], {}, "keys");
  const mean = s.one("ReduceMean", ["feats"], { axes: [1], keepdims: 0 });
  const hc = s.one("Tanh", [s.one("Add", [s.one("MatMul", [mean, s.weight("initHC")]), s.weight("initHCBias")])]);
  s.op("Split", [hc, s.ints([H, H])], { axis: 1 }, 2, ["h", "c"]);
  const start = modelProto("decoder-start", {
    nodes: s.nodes, inits: s.inits,
    inputs: [valueInfo("feats", [1, L, D])],
    outputs: [valueInfo("keys", [1, L, A]), valueInfo("h", [1, H]), valueInfo("c", [1, H])],
  });

  // step: K rows (beams) of one image; feats and keys keep batch 1 and broadcast over the rows.
  const g = new Graph(weights);
  const add = (...xs: string[]) => xs.reduce((a, b) => g.one("Add", [a, b]));
  const mul = (a: string, b: string) => g.one("Mul", [a, b]);
  const sig = (x: string) => g.one("Sigmoid", [x]);
  const tanh = (x: string) => g.one("Tanh", [x]);
  const mm = (x: string, w: string) => g.one("MatMul", [x, g.weight(w)]);
  const word = mm(g.one("Gather", [g.weight("embedding"), "prev"], { axis: 0 }), "wordIn"); // [K, 4H + O]
  const [query, gateLogit, recurrent] = g.op("Split", [mm("h", "hidden"), g.ints([A, 1, 4 * H])], { axis: 1 }, 3);
  // Additive attention: alpha = softmax_L(w^T tanh(keys + U_a h)).
  const e = tanh(g.one("Add", ["keys", g.one("Unsqueeze", [query, g.ints([1])])])); // [K, L, A]
  const scores = g.one("Squeeze", [mm(e, "attnScore"), g.ints([2])]); // [K, L]
  g.one("Softmax", [scores], { axis: 1 }, "alpha");
  const ctx = g.one("Squeeze", [g.one("MatMul", [g.one("Unsqueeze", ["alpha", g.ints([1])]), "feats"]), g.ints([1])]); // [K, D]
  const gated = mul(ctx, sig(add(gateLogit, g.weight("gateBias"))));
  const [ctxGates, ctxOut] = g.op("Split", [mm(gated, "context"), g.ints([4 * H, O])], { axis: 1 }, 2);
  const [wordGates, wordOut] = g.op("Split", [word, g.ints([4 * H, O])], { axis: 1 }, 2);
  const [gi, gf, go, gc] = g.op("Split", [add(recurrent, ctxGates, wordGates, g.weight("lstmBias")), g.ints([H, H, H, H])], { axis: 1 }, 4);
  g.one("Add", [mul(sig(gf), "c"), mul(sig(gi), tanh(gc))], {}, "c_next");
  g.one("Mul", [sig(go), tanh("c_next")], {}, "h_next");
  const out = tanh(add(mm("h_next", "outHidden"), ctxOut, wordOut, g.weight("outBias")));
  g.one("LogSoftmax", [add(mm(out, "logits"), g.weight("logitsBias"))], { axis: 1 }, "logp");
  const step = modelProto("decoder-step", {
    nodes: g.nodes, inits: g.inits,
    inputs: [valueInfo("feats", [1, L, D]), valueInfo("keys", [1, L, A]), valueInfo("h", ["rows", H]), valueInfo("c", ["rows", H]), valueInfo("prev", ["rows"], INT32)],
    outputs: [valueInfo("h_next", ["rows", H]), valueInfo("c_next", ["rows", H]), valueInfo("logp", ["rows", V]), valueInfo("alpha", ["rows", L])],
  });
  return { start, step };
}

/** Row k of the result is row from[k] of x ([rows, width]). */
function pickRows(x: Float32Array, width: number, from: ArrayLike<number>): Float32Array {
  const out = new Float32Array(from.length * width);
  for (let k = 0; k < from.length; k++) out.set(x.subarray(from[k] * width, (from[k] + 1) * width), k * width);
  return out;
}

/**
 * A StepDecoder on onnxruntime-node. Throws when onnxruntime-node is missing or cannot build the
 * graphs; callers fall back to tfjs.
 */
export async function onnxDecoder(weights: Record<string, NamedArray>, c: DecoderConfig): Promise<StepDecoder & { release(): Promise<void> }> {
  const ort = await importOnnxRuntime();
  const { start, step } = decoderToOnnx(weights, c);
  // One thread: at these sizes (a few hundred thousand multiply-adds per op) splitting work
  // across threads costs more in synchronisation than it saves.
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" as const };
  const [startSession, stepSession] = await Promise.all([ort.InferenceSession.create(start, opts), ort.InferenceSession.create(step, opts)]);
  const H = c.hiddenDim;
  return {
    async start(feats: tf.Tensor3D, rows: number): Promise<DecoderRun> {
      if (feats.shape[0] !== 1) throw new Error(`the ONNX decoder takes one image at a time, got ${feats.shape[0]}`);
      const v = new ort.Tensor("float32", (await feats.data()) as Float32Array, feats.shape);
      const s0 = await startSession.run({ feats: v });
      const keys = s0.keys;
      const zeros = new Int32Array(rows);
      let h = pickRows(s0.h.data as Float32Array, H, zeros);
      let cell = pickRows(s0.c.data as Float32Array, H, zeros);
      return {
        async step(prev: Int32Array) {
          const r = await stepSession.run({
            feats: v, keys,
            h: new ort.Tensor("float32", h, [rows, H]), c: new ort.Tensor("float32", cell, [rows, H]),
            prev: new ort.Tensor("int32", prev, [rows]),
          });
          h = r.h_next.data as Float32Array;
          cell = r.c_next.data as Float32Array;
          return { logp: r.logp.data as Float32Array, alpha: r.alpha.data as Float32Array };
        },
        reorder(from: Int32Array) {
          h = pickRows(h, H, from);
          cell = pickRows(cell, H, from);
        },
        dispose() {}, // plain arrays: nothing to free
      };
    },
    async release() {
      await Promise.all([startSession.release(), stepSession.release()]);
    },
  };
}
