/**
 * A small ONNX model writer: enough of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto,
 * AttributeProto, ValueInfoProto) encoded as protobuf by hand, so models shipped in other formats
 * (Keras layers JSON + weights, TFLite flatbuffers) can be rebuilt in memory as ONNX graphs and run
 * on onnxruntime. Field numbers follow onnx/onnx.proto (IR version 8, default domain opset 17).
 */

class Writer {
  private parts: Buffer[] = [];
  private len = 0;

  private push(b: Buffer): void {
    this.parts.push(b);
    this.len += b.length;
  }

  private varint(v: bigint): void {
    // int64 values are written as their unsigned 64-bit two's complement (10 bytes when negative).
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      out.push(byte);
    } while (x !== 0n);
    this.push(Buffer.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
    return this;
  }

  bytes(field: number, v: Buffer | Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(v.length));
    this.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, Buffer.from(v, 'utf8'));
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.len);
  }
}

export const DT = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7 } as const;

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  name?: string;
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  /** FLOAT data as Float32Array, INT64 as BigInt64Array, INT32 as Int32Array. */
  data: Float32Array | BigInt64Array | Int32Array;
}

export interface OnnxValue {
  name: string;
  /** Use a string for a symbolic (free) dimension. */
  dims: (number | string)[];
  type?: number;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
}

function attribute(name: string, v: AttrValue): Writer {
  const a = new Writer().string(1, name);
  if (typeof v === 'string') return a.bytes(4, Buffer.from(v, 'utf8')).int(20, 3);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float} for non-integers`);
    return a.int(3, v).int(20, 2);
  }
  if (Array.isArray(v)) {
    for (const x of v) a.int(8, x);
    return a.int(20, 7);
  }
  if ('float' in v) return a.float(2, v.float).int(20, 1);
  for (const x of v.floats) a.float(7, x);
  return a.int(20, 6);
}

function tensor(t: OnnxTensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  const type = t.data instanceof Float32Array ? DT.FLOAT : t.data instanceof BigInt64Array ? DT.INT64 : DT.INT32;
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims} hold ${count} values, data has ${t.data.length}`);
  w.int(2, type).string(8, t.name);
  // raw_data is little-endian, which is how typed arrays are laid out on every platform Node runs on.
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function valueInfo(v: OnnxValue): Writer {
  const shape = new Writer();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  const tt = new Writer().int(1, v.type ?? DT.FLOAT).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tt));
}

/** Encodes a graph as an ONNX ModelProto (bytes an InferenceSession can load). */
export function encodeModel(g: OnnxGraph, opset = 17): Buffer {
  const graph = new Writer();
  g.nodes.forEach((n, i) => {
    const nw = new Writer();
    for (const x of n.inputs) nw.string(1, x);
    for (const x of n.outputs) nw.string(2, x);
    nw.string(3, n.name ?? `${n.op}_${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) nw.message(5, attribute(k, v));
    graph.message(1, nw);
  });
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, tensor(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  return new Writer()
    .int(1, 8) // ir_version
    .string(2, 'menhu')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, opset))
    .finish();
}
