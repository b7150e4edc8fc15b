/**
 * Person segmentation weights from the npm package `@mediapipe/selfie_segmentation` (Apache-2.0):
 * the MediaPipe Selfie Segmentation model as a TFLite flatbuffer. We parse the flatbuffer here
 * (the few tables of tensorflow/lite/schema/schema.fbs that the model uses) and rebuild the graph
 * as ONNX in NCHW layout, op by op, so it runs on onnxruntime-node. Nothing is downloaded.
 *
 * Supported ops: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, ADD, MUL, RELU, LOGISTIC, HARD_SWISH,
 * RESIZE_BILINEAR, DEQUANTIZE (float16 weights), and MediaPipe's custom Convolution2DTransposeBias.
 * Anything else is refused with an error naming the op.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, type OnnxNode, type OnnxTensor } from './onnx.js';
import { packageDir } from './packages.js';

export const SEG_PACKAGE = '@mediapipe/selfie_segmentation';
export const SEG_FILE = 'selfie_segmentation.tflite';
export const SEG_SIZE = 256;

// ---------------------------------------------------------------------------------------------
// A minimal flatbuffer reader.

class Table {
  constructor(
    private readonly dv: DataView,
    readonly pos: number,
  ) {}

  private off(field: number): number {
    const vt = this.pos - this.dv.getInt32(this.pos, true);
    const vlen = this.dv.getUint16(vt, true);
    const o = 4 + 2 * field;
    return o < vlen ? this.dv.getUint16(vt + o, true) : 0;
  }

  u8(f: number, d = 0): number {
    const o = this.off(f);
    return o ? this.dv.getUint8(this.pos + o) : d;
  }

  i32(f: number, d = 0): number {
    const o = this.off(f);
    return o ? this.dv.getInt32(this.pos + o, true) : d;
  }

  u32(f: number, d = 0): number {
    const o = this.off(f);
    return o ? this.dv.getUint32(this.pos + o, true) : d;
  }

  private indirect(f: number): number | null {
    const o = this.off(f);
    if (!o) return null;
    const p = this.pos + o;
    return p + this.dv.getUint32(p, true);
  }

  table(f: number): Table | null {
    const p = this.indirect(f);
    return p === null ? null : new Table(this.dv, p);
  }

  /** Vector of bytes as a view into the file. */
  bytes(f: number): Uint8Array | null {
    const p = this.indirect(f);
    if (p === null) return null;
    const n = this.dv.getUint32(p, true);
    return new Uint8Array(this.dv.buffer, this.dv.byteOffset + p + 4, n);
  }

  ints(f: number): number[] {
    const p = this.indirect(f);
    if (p === null) return [];
    const n = this.dv.getUint32(p, true);
    return Array.from({ length: n }, (_, i) => this.dv.getInt32(p + 4 + 4 * i, true));
  }

  tables(f: number): Table[] {
    const p = this.indirect(f);
    if (p === null) return [];
    const n = this.dv.getUint32(p, true);
    return Array.from({ length: n }, (_, i) => {
      const e = p + 4 + 4 * i;
      return new Table(this.dv, e + this.dv.getUint32(e, true));
    });
  }

  str(f: number): string | null {
    const b = this.bytes(f);
    return b ? Buffer.from(b).toString('utf8') : null;
  }
}

// ---------------------------------------------------------------------------------------------
// TFLite schema constants (tensorflow/lite/schema/schema.fbs).

const OP = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  LOGISTIC: 14,
  MUL: 18,
  RELU: 19,
  RESIZE_BILINEAR: 23,
  CUSTOM: 32,
  HARD_SWISH: 117,
} as const;
const TT = { FLOAT32: 0, FLOAT16: 1, INT32: 2 } as const;
const PADDING_SAME = 0;

interface TfTensor {
  shape: number[];
  type: number;
  data: Uint8Array | null;
  name: string;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function floats(t: TfTensor): Float32Array {
  if (!t.data) throw new Error(`tensor ${t.name} has no data`);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (t.type === TT.FLOAT32) return Float32Array.from({ length: t.data.byteLength / 4 }, (_, i) => dv.getFloat32(4 * i, true));
  if (t.type === TT.FLOAT16) return Float32Array.from({ length: t.data.byteLength / 2 }, (_, i) => halfToFloat(dv.getUint16(2 * i, true)));
  throw new Error(`tensor ${t.name}: type ${t.type} is not a float type`);
}

/** TF 'SAME' padding for one spatial axis: [begin, end] (extra padding at the end). */
function samePad(inSize: number, outSize: number, k: number, stride: number, dilation = 1): [number, number] {
  const eff = (k - 1) * dilation + 1;
  const total = Math.max(0, (outSize - 1) * stride + eff - inSize);
  return [total >> 1, total - (total >> 1)];
}

/** OHWI (TFLite conv) → OIHW (ONNX). */
function ohwiToOihw(shape: number[], d: Float32Array): Float32Array {
  const [o, h, w, i] = shape;
  const out = new Float32Array(d.length);
  for (let a = 0; a < o; a++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < i; c++) out[((a * i + c) * h + y) * w + x] = d[((a * h + y) * w + x) * i + c];
  return out;
}

/**
 * Converts a TFLite model (first subgraph) with NHWC float input [1, H, W, C] into an ONNX model
 * with NCHW input "input" [1, C, H, W] and NCHW outputs "output" (and "output1"… when several).
 */
export function tfliteToOnnx(file: Buffer): Buffer {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const root = new Table(dv, dv.getUint32(0, true));
  const opcodes = root.tables(1).map((c) => ({ builtin: Math.max(c.u8(0), c.i32(3)), custom: c.str(1) }));
  const buffers = root.tables(4);
  const sg = root.tables(2)[0];
  if (!sg) throw new Error('TFLite model has no subgraph');
  const tensors: TfTensor[] = sg.tables(0).map((t) => {
    const b = buffers[t.u32(2)]?.bytes(0) ?? null;
    return { shape: t.ints(0), type: t.u8(1), data: b && b.length ? b : null, name: t.str(3) ?? '' };
  });
  const consts = new Map<number, Float32Array>(); // tensor index → float data (dequantised)
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const val = (i: number) => `t${i}`;
  const [inputIdx] = sg.ints(1);
  const outputIdx = sg.ints(2);
  const constOf = (i: number): Float32Array => {
    const c = consts.get(i) ?? (tensors[i].data ? floats(tensors[i]) : null);
    if (!c) throw new Error(`tensor ${tensors[i].name} is not constant`);
    return c;
  };
  const act = (fn: number, x: string, out: string): void => {
    if (fn === 0) nodes.push({ op: 'Identity', inputs: [x], outputs: [out] });
    else if (fn === 1) nodes.push({ op: 'Relu', inputs: [x], outputs: [out] });
    else if (fn === 3) {
      inits.push({ name: `${out}.lo`, dims: [], data: new Float32Array([0]) }, { name: `${out}.hi`, dims: [], data: new Float32Array([6]) });
      nodes.push({ op: 'Clip', inputs: [x, `${out}.lo`, `${out}.hi`], outputs: [out] });
    } else throw new Error(`fused activation ${fn} unsupported`);
  };
  // NHWC shapes of activations give the spatial sizes needed for explicit padding.
  const hw = (i: number): [number, number] => [tensors[i].shape[1], tensors[i].shape[2]];

  for (const [k, op] of sg.tables(3).entries()) {
    const code = opcodes[op.u32(0)];
    const ins = op.ints(1);
    const outs = op.ints(2);
    const opt = op.table(4);
    const out = val(outs[0]);
    const name = tensors[outs[0]].name || `op${k}`;
    switch (code.builtin) {
      case OP.DEQUANTIZE:
        consts.set(outs[0], floats(tensors[ins[0]]));
        break;
      case OP.CONV_2D:
      case OP.DEPTHWISE_CONV_2D: {
        const depthwise = code.builtin === OP.DEPTHWISE_CONV_2D;
        const wShape = tensors[ins[1]].shape;
        const w = constOf(ins[1]);
        const padding = opt?.u8(0) ?? 0;
        const sw = opt?.i32(1, 1) ?? 1;
        const sh = opt?.i32(2, 1) ?? 1;
        const fused = opt?.u8(depthwise ? 4 : 3) ?? 0;
        const dw = opt?.i32(depthwise ? 5 : 4, 1) ?? 1;
        const dh = opt?.i32(depthwise ? 6 : 5, 1) ?? 1;
        const [kh, kw] = [wShape[1], wShape[2]];
        const [ih, iw] = hw(ins[0]);
        const [oh, ow] = hw(outs[0]);
        const ph = padding === PADDING_SAME ? samePad(ih, oh, kh, sh, dh) : [0, 0];
        const pw = padding === PADDING_SAME ? samePad(iw, ow, kw, sw, dw) : [0, 0];
        const cin = tensors[ins[0]].shape[3];
        let wt: Float32Array;
        let wdims: number[];
        if (depthwise) {
          // [1, kh, kw, cin*m] → [cin*m, 1, kh, kw]
          const cm = wShape[3];
          wt = new Float32Array(w.length);
          for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let c = 0; c < cm; c++) wt[(c * kh + y) * kw + x] = w[(y * kw + x) * cm + c];
          wdims = [cm, 1, kh, kw];
        } else {
          wt = ohwiToOihw(wShape, w);
          wdims = [wShape[0], wShape[3], kh, kw];
        }
        inits.push({ name: `${name}.w`, dims: wdims, data: wt });
        const cin2 = [val(ins[0]), `${name}.w`];
        if (ins[2] !== undefined && ins[2] >= 0) {
          const b = constOf(ins[2]);
          inits.push({ name: `${name}.b`, dims: [b.length], data: b });
          cin2.push(`${name}.b`);
        }
        nodes.push({
          op: 'Conv',
          inputs: cin2,
          outputs: [`${out}.pre`],
          attrs: { kernel_shape: [kh, kw], strides: [sh, sw], dilations: [dh, dw], pads: [ph[0], pw[0], ph[1], pw[1]], group: depthwise ? cin : 1 },
        });
        act(fused, `${out}.pre`, out);
        break;
      }
      case OP.AVERAGE_POOL_2D: {
        const [ih, iw] = hw(ins[0]);
        const [oh, ow] = hw(outs[0]);
        const fw = opt?.i32(3) ?? 0;
        const fh = opt?.i32(4) ?? 0;
        if (oh === 1 && ow === 1 && fh === ih && fw === iw) nodes.push({ op: 'GlobalAveragePool', inputs: [val(ins[0])], outputs: [`${out}.pre`] });
        else {
          const padding = opt?.u8(0) ?? 0;
          const sw = opt?.i32(1, 1) ?? 1;
          const sh = opt?.i32(2, 1) ?? 1;
          const ph = padding === PADDING_SAME ? samePad(ih, oh, fh, sh) : [0, 0];
          const pw = padding === PADDING_SAME ? samePad(iw, ow, fw, sw) : [0, 0];
          nodes.push({
            op: 'AveragePool',
            inputs: [val(ins[0])],
            outputs: [`${out}.pre`],
            attrs: { kernel_shape: [fh, fw], strides: [sh, sw], pads: [ph[0], pw[0], ph[1], pw[1]], count_include_pad: 0 },
          });
        }
        act(opt?.u8(5) ?? 0, `${out}.pre`, out);
        break;
      }
      case OP.ADD:
      case OP.MUL: {
        for (const i of ins) if (tensors[i].data || consts.has(i)) throw new Error(`${name}: constant operands of ADD/MUL are not supported`);
        nodes.push({ op: code.builtin === OP.ADD ? 'Add' : 'Mul', inputs: ins.map(val), outputs: [`${out}.pre`] });
        act(opt?.u8(0) ?? 0, `${out}.pre`, out);
        break;
      }
      case OP.RELU:
        nodes.push({ op: 'Relu', inputs: [val(ins[0])], outputs: [out] });
        break;
      case OP.LOGISTIC:
        nodes.push({ op: 'Sigmoid', inputs: [val(ins[0])], outputs: [out] });
        break;
      case OP.HARD_SWISH:
        nodes.push({ op: 'HardSwish', inputs: [val(ins[0])], outputs: [out] });
        break;
      case OP.RESIZE_BILINEAR: {
        const alignCorners = (opt?.u8(2) ?? 0) === 1;
        const halfPixel = (opt?.u8(3) ?? 0) === 1;
        const [oh, ow] = hw(outs[0]);
        const c = tensors[outs[0]].shape[3];
        inits.push({ name: `${name}.sizes`, dims: [4], data: new BigInt64Array([1n, BigInt(c), BigInt(oh), BigInt(ow)]) });
        nodes.push({
          op: 'Resize',
          inputs: [val(ins[0]), '', '', `${name}.sizes`],
          outputs: [out],
          attrs: { mode: 'linear', coordinate_transformation_mode: alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric' },
        });
        break;
      }
      case OP.CUSTOM: {
        if (code.custom !== 'Convolution2DTransposeBias') throw new Error(`custom op ${code.custom} unsupported`);
        // custom_options: TfLiteTransposeConvParams { int padding (1 same, 2 valid); int stride_w; int stride_h }
        const co = op.bytes(5);
        if (!co || co.length < 12) throw new Error(`${name}: transpose convolution options missing`);
        const cdv = new DataView(co.buffer, co.byteOffset, co.byteLength);
        const sw = cdv.getInt32(4, true);
        const sh = cdv.getInt32(8, true);
        const wShape = tensors[ins[1]].shape; // [O, kh, kw, I]
        const [o, kh, kw, i] = wShape;
        const w = constOf(ins[1]);
        const wt = new Float32Array(w.length); // → [I, O, kh, kw]
        for (let a = 0; a < o; a++)
          for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let c = 0; c < i; c++) wt[((c * o + a) * kh + y) * kw + x] = w[((a * kh + y) * kw + x) * i + c];
        const b = constOf(ins[2]);
        const [ih, iw] = hw(ins[0]);
        const [oh, ow] = hw(outs[0]);
        const th = sh * (ih - 1) + kh - oh;
        const tw = sw * (iw - 1) + kw - ow;
        if (th < 0 || tw < 0) throw new Error(`${name}: output larger than the transpose convolution makes`);
        inits.push({ name: `${name}.w`, dims: [i, o, kh, kw], data: wt }, { name: `${name}.b`, dims: [b.length], data: b });
        nodes.push({
          op: 'ConvTranspose',
          inputs: [val(ins[0]), `${name}.w`, `${name}.b`],
          outputs: [out],
          attrs: { kernel_shape: [kh, kw], strides: [sh, sw], pads: [th >> 1, tw >> 1, th - (th >> 1), tw - (tw >> 1)] },
        });
        break;
      }
      default:
        throw new Error(`TFLite op ${code.custom ?? code.builtin} (${name}) unsupported`);
    }
  }
  const inT = tensors[inputIdx];
  if (inT.type !== TT.FLOAT32 || inT.shape.length !== 4) throw new Error('model input must be float32 NHWC');
  const nchw = (s: number[]) => [s[0], s[3], s[1], s[2]];
  nodes.unshift({ op: 'Identity', inputs: ['input'], outputs: [val(inputIdx)] });
  outputIdx.forEach((idx, n) => nodes.push({ op: 'Identity', inputs: [val(idx)], outputs: [n === 0 ? 'output' : `output${n}`] }));
  return encodeModel({
    name: 'tflite',
    nodes,
    initializers: inits,
    inputs: [{ name: 'input', dims: nchw(inT.shape) }],
    outputs: outputIdx.map((idx, n) => ({ name: n === 0 ? 'output' : `output${n}`, dims: nchw(tensors[idx].shape) })),
  });
}

/** The ONNX bytes of the package's selfie segmentation model (256×256 RGB in [0, 1] → person probability). */
export function buildSegModel(): Buffer {
  return tfliteToOnnx(readFileSync(join(packageDir(SEG_PACKAGE), SEG_FILE)));
}
