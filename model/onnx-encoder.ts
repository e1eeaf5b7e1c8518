/**
 * Converts the encoder's TF.js graph (up to the feature node) to an ONNX model in memory, so it
 * can run on onnxruntime-node's native CPU kernels (several times faster than tfjs-wasm), while
 * the tfjs graph stays the reference: test/onnx.test.ts checks both give the same features.
 *
 * Only the ops these MobileNet backbones and CenterNet's detection head use are mapped: convolutions
 * (fused with bias and Relu/Relu6, or plain), depthwise convolutions, Add, Sub, Mul, Relu, Relu6,
 * Sigmoid, Mean, ConcatV2 and 2x ResizeBilinear. Anything else fails loudly, and callers fall back
 * to tfjs. Layout: TF graphs are NHWC, ONNX convolutions NCHW; the ONNX model takes NCHW input and
 * each output is transposed back to [1, h, w, c] so both paths return the same thing.
 */
import { modelProto, nodeProto, tensorProto, valueInfo, type Pb } from "./onnx-proto.ts";
import type { tf } from "./tf.ts";
import { fromHalf } from "./weights.ts";

interface TfNode { name: string; op: string; input?: string[]; attr?: Record<string, any> }

const b64 = (s: string) => Buffer.from(s, "base64").toString();

/** A graph constant as plain numbers. */
export interface Constant { shape: number[]; data: Float32Array | Int32Array }

/**
 * A graph's constants decoded from its weight data in plain JavaScript (float32 and int32, and
 * tfjs's quantizations: uint8 / uint16 as q * scale + min, float16), as tfjs would dequantize them.
 * Converting without tfjs keeps the weights (and a probe's activations) out of tfjs-wasm's heap,
 * which grows to its peak and never gives memory back: about 50 MB of the serving process.
 */
export function decodeWeights(a: tf.io.ModelArtifacts): Record<string, Constant> {
  const parts = [a.weightData ?? []].flat() as ArrayBuffer[];
  // The graphs here come as one buffer (encoder.ts toArtifacts): read it in place, no copy.
  const all = parts.length === 1 ? new Uint8Array(parts[0]) : Buffer.concat(parts.map((b) => new Uint8Array(b)));
  const view = new DataView(all.buffer, all.byteOffset, all.byteLength);
  const out: Record<string, Constant> = {};
  let offset = 0;
  for (const w of a.weightSpecs ?? []) {
    const n = w.shape.reduce((x, y) => x * y, 1);
    const q = w.quantization;
    if (w.dtype !== "float32" && w.dtype !== "int32") throw new Error(`constant ${w.name}: dtype ${w.dtype} is not supported`);
    const data = w.dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
    if (!q) {
      for (let i = 0; i < n; i++) data[i] = w.dtype === "int32" ? view.getInt32(offset + 4 * i, true) : view.getFloat32(offset + 4 * i, true);
      offset += 4 * n;
    } else if (q.dtype === "float16" && w.dtype === "float32") {
      for (let i = 0; i < n; i++) data[i] = fromHalf(view.getUint16(offset + 2 * i, true));
      offset += 2 * n;
    } else if ((q.dtype === "uint8" || q.dtype === "uint16") && q.scale !== undefined && q.min !== undefined) {
      const size = q.dtype === "uint8" ? 1 : 2;
      for (let i = 0; i < n; i++) {
        const v = (size === 1 ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true)) * q.scale + q.min;
        data[i] = w.dtype === "int32" ? Math.round(v) : v; // as tfjs rounds quantized integers
      }
      offset += size * n;
    } else throw new Error(`constant ${w.name}: quantization ${JSON.stringify(q)} is not supported`);
    out[w.name] = { shape: w.shape, data };
  }
  if (offset !== all.byteLength) throw new Error(`the weight data holds ${all.byteLength} bytes, its specs ${offset}`);
  return out;
}

/**
 * Builds the ONNX model for nodes of a TF.js graph: `outputs` maps each ONNX output name to the
 * graph node it reads (a plain node name means { features: node }). `weights` are the graph's
 * constants (decodeWeights).
 */
export function graphToOnnx(topology: { node: TfNode[] }, weights: Record<string, Constant>, inputNode: string, outputs: string | Record<string, string>): Uint8Array {
  const outs = typeof outputs === "string" ? { features: outputs } : outputs;
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
  for (const node of Object.values(outs)) visit(node);

  const nodes: Pb[] = [];
  const inits: Pb[] = [];
  const constVal = (name: string) => {
    const w = weights[name];
    if (!w) throw new Error(`no weights for constant ${name}`);
    return w;
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
      case "FusedDepthwiseConv2dNative":
      case "Conv2D":
      case "DepthwiseConv2dNative": {
        const plain = n.op === "Conv2D" || n.op === "DepthwiseConv2dNative";
        const fused = plain ? [] : (n.attr!.fused_ops.list.s as string[]).map(b64);
        const padding = b64(n.attr!.padding.s);
        const { shape, data } = constVal(ins[1]);
        const [kh, kw, cin, cm] = shape;
        // VALID equals SAME for the head's 1x1 convolutions; other VALID convolutions are not mapped.
        const padOk = padding === "SAME" || (padding === "VALID" && kh === 1 && kw === 1);
        const dilated = ((n.attr!.dilations?.list?.i as string[] | undefined) ?? []).some((d) => d !== "1");
        if (!padOk || dilated || b64(n.attr!.data_format?.s ?? "TkhXQw==") !== "NHWC" || (!plain && fused[0] !== "BiasAdd")) throw new Error(`unsupported ${n.op} in ${n.name}`);
        const strides = (n.attr!.strides.list.i as string[]).map(Number).slice(1, 3);
        const depthwise = n.op === "FusedDepthwiseConv2dNative" || n.op === "DepthwiseConv2dNative";
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
        const convIns = [ins[0], wName];
        if (!plain) {
          const bias = constVal(ins[2]);
          const bName = ins[2] + "/onnx";
          inits.push(tensorProto(bName, [cout], Float32Array.from(bias.data)));
          convIns.push(bName);
        }
        const act = fused[1];
        const convOut = act ? tmp() : n.name;
        nodes.push(nodeProto("Conv", convIns, [convOut], { auto_pad: "SAME_UPPER", strides, kernel_shape: [kh, kw], group: depthwise ? cin : 1 }));
        if (act === "Relu") nodes.push(nodeProto("Relu", [convOut], [n.name]));
        else if (act === "Relu6") nodes.push(nodeProto("Clip", [convOut, useScalar(0), useScalar(6)], [n.name]));
        else if (act) throw new Error(`unsupported fused activation ${act} in ${n.name}`);
        break;
      }
      case "Relu6":
        nodes.push(nodeProto("Clip", [ins[0], useScalar(0), useScalar(6)], [n.name]));
        break;
      case "Relu":
      case "Sigmoid":
      case "Identity":
        nodes.push(nodeProto(n.op, [ins[0]], [n.name]));
        break;
      case "ConcatV2": {
        const axis = Number(constVal(ins.at(-1)!).data[0]);
        if (axis !== 3 && axis !== -1) throw new Error(`unsupported ConcatV2 axis ${axis} in ${n.name}`);
        nodes.push(nodeProto("Concat", ins.slice(0, -1), [n.name], { axis: 1 })); // NHWC channels = NCHW axis 1
        break;
      }
      case "ResizeBilinear": {
        // CenterNet's upsampling doubles the grid; its target size is a constant made for 512 px
        // inputs, so the scale (not the size) is what carries over to other input sizes.
        if (n.attr?.align_corners?.b || n.attr?.half_pixel_centers?.b) throw new Error(`unsupported ResizeBilinear mode in ${n.name}`);
        const id = "scales/2x";
        if (!consts.has(id)) {
          consts.add(id);
          inits.push(tensorProto(id, [4], Float32Array.of(1, 1, 2, 2)));
        }
        // TF's legacy resize (no corner alignment, no half-pixel centres) is ONNX's "asymmetric" linear mode.
        nodes.push(nodeProto("Resize", [ins[0], "", id], [n.name], { mode: "linear", coordinate_transformation_mode: "asymmetric" }));
        break;
      }
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
  for (const [name, node] of Object.entries(outs)) nodes.push(nodeProto("Transpose", [node], [name], { perm: [0, 2, 3, 1] }));
  const outInfo = Object.keys(outs).map((name) => valueInfo(name, ["batch", `${name}_h`, `${name}_w`, `${name}_c`]));
  return modelProto("encoder", { nodes, inits, inputs: [valueInfo(inputNode, ["batch", 3, "height", "width"])], outputs: outInfo });
}
