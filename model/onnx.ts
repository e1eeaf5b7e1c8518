/**
 * Converts the encoder's TF.js graph (up to the feature node) to an ONNX model in memory, so it
 * can run on onnxruntime-node's native CPU kernels (several times faster than tfjs-wasm), while
 * the tfjs graph stays the reference: test/onnx.test.ts checks both give the same features.
 *
 * Only the ops these MobileNet backbones use are mapped: fused Conv2D / depthwise conv with bias
 * and Relu/Relu6, Add, Sub, Mul, Relu6 and Mean. Anything else fails loudly, and callers fall back to tfjs.
 * Layout: TF graphs are NHWC, ONNX convolutions NCHW; the ONNX model takes NCHW input and its
 * output is transposed back to [1, h, w, c] so both paths return the same thing.
 */
import { modelProto, nodeProto, tensorProto, valueInfo, type Pb } from "./onnx-proto.ts";
import type { tf } from "./tf.ts";

interface TfNode { name: string; op: string; input?: string[]; attr?: Record<string, any> }

const b64 = (s: string) => Buffer.from(s, "base64").toString();

/**
 * Builds the ONNX model for `outputNode` of a TF.js graph. `weights` are the graph's constants
 * as loaded (and dequantized) by tfjs.
 */
export function graphToOnnx(topology: { node: TfNode[] }, weights: Record<string, tf.Tensor[]>, inputNode: string, outputNode: string): Uint8Array {
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const clean = (s: string) => s.replace(/^\^/, "").replace(/:\d+$/, "");
  // Nodes the output depends on, in dependency order.
  const order: TfNode[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const n = byName.get(name);
    if (!n) throw new Error(`graph has no node ${name}`);
    for (const i of n.input ?? []) visit(clean(i));
    order.push(n);
  };
  visit(outputNode);

  const nodes: Pb[] = [];
  const inits: Pb[] = [];
  const constVal = (name: string) => {
    const w = weights[name]?.[0];
    if (!w) throw new Error(`no weights for constant ${name}`);
    return { shape: w.shape as number[], data: w.dataSync() as Float32Array | Int32Array };
  };
  const consts = new Set<string>();
  const useConst = (name: string, broadcastNchw: boolean) => {
    const id = name + (broadcastNchw ? "/nchw" : "");
    if (!consts.has(id)) {
      consts.add(id);
      const { shape, data } = constVal(name);
      // A per-channel vector [c] broadcasts over NHWC's last axis; in NCHW it must be [c, 1, 1].
      const dims = broadcastNchw && shape.length === 1 ? [shape[0], 1, 1] : shape;
      inits.push(tensorProto(id, dims, Float32Array.from(data)));
    }
    return id;
  };
  let k = 0;
  const tmp = () => `tmp/${k++}`;
  for (const n of order) {
    const ins = (n.input ?? []).map(clean);
    switch (n.op) {
      case "Const":
      case "Placeholder":
        break;
      case "_FusedConv2D":
      case "FusedDepthwiseConv2dNative": {
        const fused = (n.attr!.fused_ops.list.s as string[]).map(b64);
        if (b64(n.attr!.padding.s) !== "SAME" || b64(n.attr!.data_format?.s ?? "TkhXQw==") !== "NHWC" || fused[0] !== "BiasAdd") throw new Error(`unsupported ${n.op} in ${n.name}`);
        const strides = (n.attr!.strides.list.i as string[]).map(Number).slice(1, 3);
        const { shape, data } = constVal(ins[1]);
        const [kh, kw, cin, cm] = shape;
        const depthwise = n.op === "FusedDepthwiseConv2dNative";
        const cout = depthwise ? cin * cm : cm;
        // TF filters are [kh, kw, in, out] (depthwise: [kh, kw, in, multiplier]); ONNX wants [out, in/group, kh, kw].
        const w = new Float32Array(cout * (depthwise ? 1 : cin) * kh * kw);
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cm; o++) {
          const src = ((y * kw + x) * cin + i) * cm + o;
          const dst = depthwise ? ((i * cm + o) * kh + y) * kw + x : ((o * cin + i) * kh + y) * kw + x;
          w[dst] = data[src];
        }
        const wName = ins[1] + "/onnx";
        inits.push(tensorProto(wName, [cout, depthwise ? 1 : cin, kh, kw], w));
        const bias = constVal(ins[2]);
        const bName = ins[2] + "/onnx";
        inits.push(tensorProto(bName, [cout], Float32Array.from(bias.data)));
        const act = fused[1];
        const convOut = act ? tmp() : n.name;
        nodes.push(nodeProto("Conv", [ins[0], wName, bName], [convOut], { auto_pad: "SAME_UPPER", strides, kernel_shape: [kh, kw], group: depthwise ? cin : 1 }));
        if (act === "Relu") nodes.push(nodeProto("Relu", [convOut], [n.name]));
        else if (act === "Relu6") nodes.push(nodeProto("Clip", [convOut, useScalar(0), useScalar(6)], [n.name]));
        else if (act) throw new Error(`unsupported fused activation ${act} in ${n.name}`);
        break;
      }
      case "Relu6":
        nodes.push(nodeProto("Clip", [ins[0], useScalar(0), useScalar(6)], [n.name]));
        break;
      case "Add":
      case "AddV2":
      case "Sub":
      case "Mul": {
        const args = ins.map((i) => (byName.get(i)?.op === "Const" ? useConst(i, true) : i));
        nodes.push(nodeProto(n.op === "AddV2" ? "Add" : n.op, args, [n.name]));
        break;
      }
      case "Mean": {
        const axes = Array.from(constVal(ins[1]).data);
        if (axes.join() !== "1,2") throw new Error(`unsupported Mean axes ${axes} in ${n.name}`);
        const keep = n.attr?.keep_dims?.b ?? false;
        if (!keep) throw new Error(`unsupported Mean without keep_dims in ${n.name}`);
        nodes.push(nodeProto("GlobalAveragePool", [ins[0]], [n.name]));
        break;
      }
      default:
        throw new Error(`op ${n.op} (${n.name}) has no ONNX mapping`);
    }
  }
  function useScalar(v: number) {
    const id = `scalar/${v}`;
    if (!consts.has(id)) {
      consts.add(id);
      inits.push(tensorProto(id, [], Float32Array.of(v)));
    }
    return id;
  }
  nodes.push(nodeProto("Transpose", [outputNode], ["features"], { perm: [0, 2, 3, 1] }));
  return modelProto("encoder", { nodes, inits, inputs: [valueInfo(inputNode, ["batch", 3, "height", "width"])], outputs: [valueInfo("features", ["batch", "h", "w", "c"])] });
}
