/**
 * What the encoder converter (onnx-encoder.ts) and the decoder-step builder (onnx-decoder.ts)
 * share: a minimal protobuf writer for ONNX models (just the messages and wire types they need).
 */

export class Pb {
  private parts: Uint8Array[] = [];
  private varint(n: number | bigint) {
    let v = BigInt.asUintN(64, BigInt(n));
    const out: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      out.push(b);
    } while (v);
    this.parts.push(Uint8Array.from(out));
  }
  private key(field: number, wire: number) { this.varint((field << 3) | wire); }
  int(field: number, n: number | bigint) { this.key(field, 0); this.varint(n); return this; }
  bytes(field: number, b: Uint8Array) { this.key(field, 2); this.varint(b.length); this.parts.push(b); return this; }
  str(field: number, s: string) { return this.bytes(field, new TextEncoder().encode(s)); }
  msg(field: number, m: Pb) { return this.bytes(field, m.done()); }
  float(field: number, f: number) { this.key(field, 5); const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, f, true); this.parts.push(b); return this; }
  done(): Uint8Array {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) out.set(p, (o += p.length) - p.length);
    return out;
  }
}

/** ONNX TensorProto element types. */
export const FLOAT = 1, UINT8 = 2, INT8 = 3, INT32 = 6, INT64 = 7;
export type Attr = number | number[] | string;

export function tensorProto(name: string, dims: number[], data: Float32Array | BigInt64Array | Int8Array | Uint8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, data instanceof Float32Array ? FLOAT : data instanceof Int8Array ? INT8 : data instanceof Uint8Array ? UINT8 : INT64).str(8, name);
  return t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** A graph input or output: its name, element type and shape (strings name free dimensions). */
export function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, elemType).msg(2, shape)));
}

export function nodeProto(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}): Pb {
  const n = new Pb();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, outputs[0]).str(4, op);
  for (const [k, v] of Object.entries(attrs)) {
    const a = new Pb().str(1, k);
    if (typeof v === "string") a.bytes(4, new TextEncoder().encode(v)).int(20, 3);
    else if (Array.isArray(v)) { for (const x of v) a.int(8, x); a.int(20, 7); }
    else a.int(3, v).int(20, 2);
    n.msg(5, a);
  }
  return n;
}

/** A whole model (IR version 8, opset 13) from its nodes, initializers (weights), inputs and outputs. */
export function modelProto(name: string, g: { nodes: Pb[]; inits: Pb[]; inputs: Pb[]; outputs: Pb[] }): Uint8Array {
  const graph = new Pb();
  for (const n of g.nodes) graph.msg(1, n);
  graph.str(2, name);
  for (const i of g.inits) graph.msg(5, i);
  for (const i of g.inputs) graph.msg(11, i);
  for (const o of g.outputs) graph.msg(12, o);
  return new Pb().int(1, 8).str(2, "caption-studio").msg(7, graph).msg(8, new Pb().str(1, "").int(2, 13)).done();
}
