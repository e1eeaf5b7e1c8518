/**
 * The decoder's inference step as two ONNX graphs run on onnxruntime-node: "start" (image
 * features -> attention keys and the initial LSTM state, once per image) and "step" (one word for
 * every beam). An ensemble is one pair of graphs holding every member, so a step is one native
 * call whatever the ensemble's size, and the members' distributions are combined inside it. Same
 * maths as decoder.ts imageState() and step() and step-decoder.ts ensembleDecoder(), which stay
 * the reference (test/onnx.test.ts checks that both give the same log-probabilities and captions).
 *
 * Why: at batch 1-10 a step is ~40 tiny ops per member; tfjs-wasm pays a fixed dispatch cost per
 * op, and each onnxruntime call a fixed cost of its own. Beam reordering is a Gather inside the next
 * step (`from`). At a few rows a step mostly streams its weights from memory (about 17 MB per
 * member in float32), so two things cut its time: int8 weights (`int8`: a quarter of the bytes,
 * each row's activations quantised on their own), and batching the steps that concurrent captions
 * ask for into one call. bench/caption.ts and bench/folder.ts have the figures.
 */
import type { DecoderConfig } from "./config.ts";
import { flushEachTurn } from "./each-turn.ts";
import { INT32, modelProto, nodeProto, tensorProto, valueInfo, type Attr, type Pb } from "./onnx-proto.ts";
import { importOnnxRuntime } from "./onnxruntime.ts";
import type { DecoderRun, StepDecoder } from "./step-decoder.ts";
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
    const w = this.weights[name];
    if (!w) throw new Error(`decoder weights have no ${name}`);
    return this.constant(name, w.shape, w.data);
  }

  /** A constant initializer, added once however often it is used. */
  private constant(name: string, dims: number[], data: Float32Array | BigInt64Array | Uint8Array): string {
    if (!this.added.has(name)) {
      this.added.add(name);
      this.inits.push(tensorProto(name, dims, data));
    }
    return name;
  }

  ints(values: number[]): string {
    return this.constant(`i64/${values.join("_")}`, [values.length], BigInt64Array.from(values, BigInt));
  }

  uint8(value: number): string {
    return this.constant(`u8/${value}`, [], Uint8Array.of(value));
  }

  float(value: number): string {
    return this.constant(`f32/${value}`, [], Float32Array.of(value));
  }

  /**
   * The weight as int8 with one scale per output column (symmetric: round(w / scale), scale = max |w| / 127).
   * Returns [weight, scales].
   */
  int8(name: string): [string, string] {
    const q = `${name}/int8`, sc = `${name}/scale`;
    if (!this.added.has(q)) {
      const w = this.weights[name];
      if (!w || w.shape.length !== 2) throw new Error(`decoder weights have no matrix ${name}`);
      const [rows, cols] = w.shape;
      const scale = new Float32Array(cols);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) scale[j] = Math.max(scale[j], Math.abs(w.data[i * cols + j]));
      for (let j = 0; j < cols; j++) scale[j] = scale[j] / 127 || 1;
      const data = new Int8Array(rows * cols);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = Math.round(w.data[i * cols + j] / scale[j]);
      this.added.add(q);
      this.inits.push(tensorProto(q, [rows, cols], data), tensorProto(sc, [cols], scale));
    }
    return [q, sc];
  }

  /**
   * x [K, n] times an int8 weight: each row of x is quantised on its own (symmetric, scale = max |row| / 127),
   * so a row's result never depends on the other rows in the batch (other images, other beams).
   */
  rowInt8MatMul(x: string, name: string): string {
    const [q, colScale] = this.int8(name);
    const scale = this.one("Max", [this.one("Div", [this.one("ReduceMax", [this.one("Abs", [x])], { axes: [1], keepdims: 1 }), this.float(127)]), this.float(1e-12)]); // [K, 1]
    // As uint8 around a zero point of 128: onnxruntime's fast kernels take unsigned activations.
    const xq = this.one("Cast", [this.one("Add", [this.one("Round", [this.one("Div", [x, scale])]), this.float(128)])], { to: 2 }); // uint8
    const acc = this.one("Cast", [this.one("MatMulInteger", [xq, q, this.uint8(128)])], { to: 1 }); // int32 -> float
    return this.one("Mul", [this.one("Mul", [acc, scale]), colScale]);
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

/** Member m's weight `name` is `m<m>/<name>` in the graphs; its state and keys are h<m>, c<m>, keys<m>. */
const prefixed = (members: readonly Record<string, NamedArray>[]) =>
  Object.fromEntries(members.flatMap((w, m) => Object.entries(w).map(([name, a]) => [`m${m}/${name}`, a])));

/** Builds the "start" and "step" models from the members' float32 weights (one member: a plain decoder). */
export function decoderToOnnx(members: readonly Record<string, NamedArray>[], c: DecoderConfig, o: { int8?: boolean } = {}): { start: Uint8Array; step: Uint8Array } {
  const { hiddenDim: H, attnDim: A, outDim: O, featureDim: D, vocabSize: V } = c;
  const L = c.grid[0] * c.grid[1];
  const n = members.length;
  const weights = prefixed(members);
  const ms = members.map((_, m) => m);

  const nTags = c.tags ?? 0;
  // start: feats [1, L, D] -> per member keys [1, L, A] = v W_a + b; [h0 | c0] = tanh(mean(v) W_init + b);
  // with tags, also the class scores' part of every step's input, tag = tags W_tag [1, 4H + O].
  const s = new Graph(weights);
  const mean = s.one("ReduceMean", ["feats"], { axes: [1], keepdims: 0 });
  for (const m of ms) {
    if (nTags) s.one("MatMul", ["tags", s.weight(`m${m}/tagIn`)], {}, `tag${m}`);
    s.one("Add", [s.one("MatMul", ["feats", s.weight(`m${m}/attnFeat`)]), s.weight(`m${m}/attnBias`)], {}, `keys${m}`);
    const hc = s.one("Tanh", [s.one("Add", [s.one("MatMul", [mean, s.weight(`m${m}/initHC`)]), s.weight(`m${m}/initHCBias`)])]);
    s.op("Split", [hc, s.ints([H, H])], { axis: 1 }, 2, [`h${m}`, `c${m}`]);
  }
  const start = modelProto("decoder-start", {
    nodes: s.nodes, inits: s.inits,
    inputs: [valueInfo("feats", ["n", L, D]), ...(nTags ? [valueInfo("tags", ["n", nTags])] : [])],
    outputs: ms.flatMap((m) => [valueInfo(`keys${m}`, ["n", L, A]), ...(nTags ? [valueInfo(`tag${m}`, ["n", 4 * H + O])] : []), valueInfo(`h${m}`, ["n", H]), valueInfo(`c${m}`, ["n", H])]),
  });

  // step: K rows (beams). feats and keys have one entry per row, or one for all rows when they are
  // the beams of one image (then they broadcast, and nothing is copied per row).
  // Row k continues from row from[k] of the state given (the previous step's rows, or start's one row).
  const g = new Graph(weights);
  const add = (...xs: string[]) => xs.reduce((a, b) => g.one("Add", [a, b]));
  const mul = (a: string, b: string) => g.one("Mul", [a, b]);
  const sig = (x: string) => g.one("Sigmoid", [x]);
  const tanh = (x: string) => g.one("Tanh", [x]);
  const logps: string[] = [], alphas: string[] = [];
  for (const m of ms) {
    const w = (name: string) => g.weight(`m${m}/${name}`);
    // The per-row matmuls, which stream the big matrices, in int8 when asked (4x fewer bytes to read).
    const mm = (x: string, name: string) => (o.int8 && name !== "attnScore" ? g.rowInt8MatMul(x, `m${m}/${name}`) : g.one("MatMul", [x, w(name)]));
    const h = g.one("Gather", [`h${m}`, "from"], { axis: 0 }), c0 = g.one("Gather", [`c${m}`, "from"], { axis: 0 });
    const projected = mm(g.one("Gather", [w("embedding"), "prev"], { axis: 0 }), "wordIn"); // [rows, 4H + O]
    const word = nTags ? g.one("Add", [projected, `tag${m}`]) : projected;
    const [query, gateLogit, recurrent] = g.op("Split", [mm(h, "hidden"), g.ints([A, 1, 4 * H])], { axis: 1 }, 3);
    // Additive attention: alpha = softmax_L(w^T tanh(keys + U_a h)).
    const e = tanh(g.one("Add", [`keys${m}`, g.one("Unsqueeze", [query, g.ints([1])])])); // [K, L, A]
    const alpha = g.one("Softmax", [g.one("Squeeze", [mm(e, "attnScore"), g.ints([2])])], { axis: 1 }); // [K, L]
    const ctx = g.one("Squeeze", [g.one("MatMul", [g.one("Unsqueeze", [alpha, g.ints([1])]), "feats"]), g.ints([1])]); // [K, D]
    const gated = mul(ctx, sig(add(gateLogit, w("gateBias"))));
    const [ctxGates, ctxOut] = g.op("Split", [mm(gated, "context"), g.ints([4 * H, O])], { axis: 1 }, 2);
    const [wordGates, wordOut] = g.op("Split", [word, g.ints([4 * H, O])], { axis: 1 }, 2);
    const [gi, gf, go, gc] = g.op("Split", [add(recurrent, ctxGates, wordGates, w("lstmBias")), g.ints([H, H, H, H])], { axis: 1 }, 4);
    const cNext = g.one("Add", [mul(sig(gf), c0), mul(sig(gi), tanh(gc))], {}, `c_next${m}`);
    const hNext = g.one("Mul", [sig(go), tanh(cNext)], {}, `h_next${m}`);
    const out = tanh(add(mm(hNext, "outHidden"), ctxOut, wordOut, w("outBias")));
    logps.push(g.one("LogSoftmax", [add(mm(out, "logits"), w("logitsBias"))], { axis: 1 }));
    alphas.push(alpha);
  }
  // The normalised geometric mean of the members' distributions: log-softmax of their mean log-probabilities.
  if (n === 1) {
    g.one("Identity", [logps[0]], {}, "logp");
    g.one("Identity", [alphas[0]], {}, "alpha");
  } else {
    g.one("LogSoftmax", [mul(add(...logps), g.float(1 / n))], { axis: 1 }, "logp");
    g.one("Mul", [add(...alphas), g.float(1 / n)], {}, "alpha");
  }
  const step = modelProto("decoder-step", {
    nodes: g.nodes, inits: g.inits,
    inputs: [
      valueInfo("feats", ["n", L, D]), valueInfo("from", ["rows"], INT32), valueInfo("prev", ["rows"], INT32),
      ...ms.flatMap((m) => [valueInfo(`keys${m}`, ["n", L, A]), ...(nTags ? [valueInfo(`tag${m}`, ["n", 4 * H + O])] : []), valueInfo(`h${m}`, ["state", H]), valueInfo(`c${m}`, ["state", H])]),
    ],
    outputs: [valueInfo("logp", ["rows", V]), valueInfo("alpha", ["rows", L]), ...ms.flatMap((m) => [valueInfo(`h_next${m}`, ["rows", H]), valueInfo(`c_next${m}`, ["rows", H])])],
  });
  return { start, step };
}

export interface OnnxDecoder extends StepDecoder {
  /** Steps served so far, and the native calls that ran them (fewer when concurrent steps were batched). */
  counts(): { steps: number; calls: number };
  release(): Promise<void>;
}

/** One image being decoded: its features and per-image inputs (keys, class-score inputs), and the LSTM state its last step left. */
interface Run {
  rows: number;
  feats: Float32Array; // [L * D]
  image: Float32Array[]; // per-image step inputs (imageInputs): each member's keys [L * A], then with tags each member's tag [4H + O]
  state: Float32Array[]; // h0, c0, h1, c1, ...: [stateRows * H] each
  stateRows: number;
  from: Int32Array; // row k of the next step continues from state row from[k]
}

interface Pending {
  run: Run;
  prev: Int32Array;
  resolve(r: { logp: Float32Array; alpha: Float32Array }): void;
  reject(e: unknown): void;
}

/**
 * A StepDecoder on onnxruntime-node for one decoder or an ensemble of them (same architecture and
 * vocabulary). Steps that several images' searches ask for at the same time (captions decoded
 * concurrently: a folder, or several users) run as one batch: a step at one row mostly reads the
 * weights (about 17 MB per member), so more rows cost little more. Throws when onnxruntime-node is
 * missing or cannot build the graphs; callers fall back to tfjs.
 */
export async function onnxDecoder(members: readonly Record<string, NamedArray>[], c: DecoderConfig, o: { int8?: boolean } = {}): Promise<OnnxDecoder> {
  if (!members.length) throw new Error("onnxDecoder needs at least one member's weights");
  const ort = await importOnnxRuntime();
  type Tensor = InstanceType<typeof ort.Tensor>;
  const { start, step } = decoderToOnnx(members, c, o);
  // One thread: at these sizes (a few hundred thousand multiply-adds per op) splitting work
  // across threads costs more in synchronisation than it saves.
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" as const };
  const [startSession, stepSession] = await Promise.all([ort.InferenceSession.create(start, opts), ort.InferenceSession.create(step, opts)]);
  const { hiddenDim: H, attnDim: A, featureDim: D, vocabSize: V, outDim: O } = c;
  const L = c.grid[0] * c.grid[1];
  const stateNames = members.flatMap((_, m) => [`h${m}`, `c${m}`]);
  // What start computes once per image and every step reads: [name, dims after the image axis].
  const imageInputs: [string, number[]][] = [...members.map((_, m): [string, number[]] => [`keys${m}`, [L, A]]), ...(c.tags ? members.map((_, m): [string, number[]] => [`tag${m}`, [4 * H + O]]) : [])];
  const sizeOf = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
  const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);
  const i32 = (data: Int32Array) => new ort.Tensor("int32", data, [data.length]);

  let queue: Pending[] = [];
  let steps = 0, calls = 0;
  // Concurrent searches ask for their steps in the same turn of the event loop: one call serves them.
  const schedule = flushEachTurn(flush, () => queue.length > 0);
  // Per-row copies of the images' features, keys and class-score inputs for a batch of several images; kept while the
  // same runs with the same rows keep stepping together (most steps of a folder's batch).
  let rowInputs: { runs: Run[]; rows: number[]; feats: Tensor; image: Tensor[] } | null = null;

  function inputsFor(batch: Pending[]): Record<string, Tensor> {
    const runs = batch.map((p) => p.run);
    if (runs.length === 1) {
      const r = runs[0];
      return Object.fromEntries([["feats", f32(r.feats, [1, L, D])], ...imageInputs.map(([name, dims], j) => [name, f32(r.image[j], [1, ...dims])])]);
    }
    const rows = runs.map((r) => r.rows);
    if (!rowInputs || rowInputs.runs.length !== runs.length || runs.some((r, i) => r !== rowInputs!.runs[i] || rows[i] !== rowInputs!.rows[i])) {
      const R = rows.reduce((a, b) => a + b, 0);
      const feats = new Float32Array(R * L * D), image = imageInputs.map(([, dims]) => new Float32Array(R * sizeOf(dims)));
      let k = 0;
      for (const r of runs) {
        for (let j = 0; j < r.rows; j++, k++) {
          feats.set(r.feats, k * L * D);
          image.forEach((x, i) => x.set(r.image[i], k * sizeOf(imageInputs[i][1])));
        }
      }
      rowInputs = { runs, rows, feats: f32(feats, [R, L, D]), image: image.map((x, i) => f32(x, [R, ...imageInputs[i][1]])) };
    }
    return Object.fromEntries([["feats", rowInputs.feats], ...imageInputs.map(([name], i) => [name, rowInputs!.image[i]])]);
  }

  async function flush() {
    const batch = queue;
    queue = [];
    try {
      const runs = batch.map((p) => p.run);
      // Every run's state rows one after the other; each run's `from` shifted to its own.
      const stateRows = runs.reduce((n, r) => n + r.stateRows, 0);
      const state = stateNames.map((_, j) => {
        if (runs.length === 1) return runs[0].state[j];
        const all = new Float32Array(stateRows * H);
        let o = 0;
        for (const r of runs) all.set(r.state[j], (o += r.stateRows * H) - r.stateRows * H);
        return all;
      });
      const from = new Int32Array(runs.reduce((n, r) => n + r.rows, 0)), prev = new Int32Array(from.length);
      let row = 0, base = 0;
      for (const [i, r] of runs.entries()) {
        for (let k = 0; k < r.rows; k++) from[row + k] = base + r.from[k];
        prev.set(batch[i].prev, row);
        row += r.rows;
        base += r.stateRows;
      }
      const feeds: Record<string, Tensor> = { ...inputsFor(batch), from: i32(from), prev: i32(prev) };
      stateNames.forEach((name, j) => (feeds[name] = f32(state[j], [stateRows, H])));
      const out = await stepSession.run(feeds);
      steps += batch.length;
      calls++;
      const logp = out.logp.data as Float32Array, alpha = out.alpha.data as Float32Array;
      const next = stateNames.map((name) => out[name.replace(/^(h|c)/, "$1_next")].data as Float32Array);
      row = 0;
      for (const [i, r] of runs.entries()) {
        const [a, b] = [row, row + r.rows];
        r.state = next.map((x) => x.subarray(a * H, b * H));
        r.stateRows = r.rows;
        r.from = Int32Array.from({ length: r.rows }, (_, k) => k);
        batch[i].resolve({ logp: logp.subarray(a * V, b * V), alpha: alpha.subarray(a * L, b * L) });
        row = b;
      }
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  return {
    async start(feats: tf.Tensor3D, rows: number, tags?: Float32Array): Promise<DecoderRun> {
      if (feats.shape[0] !== 1) throw new Error(`the ONNX decoder takes one image at a time, got ${feats.shape[0]}`);
      if (c.tags && tags?.length !== c.tags) throw new Error(`this decoder reads ${c.tags} class scores per image, got ${tags ? tags.length : "none"}`);
      const data = (await feats.data()) as Float32Array;
      const s0 = await startSession.run({ feats: f32(data, [1, L, D]), ...(c.tags ? { tags: f32(tags!, [1, c.tags]) } : {}) });
      const run: Run = {
        rows, feats: data,
        image: imageInputs.map(([name]) => s0[name].data as Float32Array),
        state: stateNames.map((k) => s0[k].data as Float32Array),
        stateRows: 1,
        from: new Int32Array(rows), // every row starts from start's one row
      };
      return {
        step(prev: Int32Array) {
          return new Promise((resolve, reject) => {
            queue.push({ run, prev: Int32Array.from(prev), resolve, reject });
            schedule();
          });
        },
        reorder(to: Int32Array) {
          run.from = Int32Array.from(to);
        },
        dispose() {
          if (rowInputs?.runs.includes(run)) rowInputs = null;
        },
      };
    },
    counts: () => ({ steps, calls }),
    async release() {
      await Promise.all([startSession.release(), stepSession.release()]);
    },
  };
}
