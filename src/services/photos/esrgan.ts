/**
 * Super-resolution weights from the npm package `@upscalerjs/esrgan-slim` (MIT): a Keras
 * "layers-model" (RDN generator, idealo ISR family) as TensorFlow.js JSON topology plus float32
 * weight shards. We read both from the installed package and rebuild the network as an ONNX graph
 * in memory (NCHW), layer by layer, so it runs on onnxruntime-node. Nothing is downloaded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DT, encodeModel, type OnnxGraph, type OnnxNode, type OnnxTensor } from './onnx.js';
import { packageDir } from './packages.js';

export const SR_PACKAGE = '@upscalerjs/esrgan-slim';
export type SrScale = 2 | 3 | 4 | 8;

interface KerasLayer {
  class_name: string;
  name: string;
  config: Record<string, any>;
  inbound_nodes: [string, number, number, unknown][][];
}

interface LayersModelJson {
  format: string;
  modelTopology: { model_config: { class_name: string; config: { layers: KerasLayer[]; input_layers: [string, number, number][]; output_layers: [string, number, number][] } } };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string; quantization?: unknown }[] }[];
}

/** Folder of the installed package's model for one scale. */
export function srModelDir(scale: SrScale): string {
  return join(packageDir(SR_PACKAGE), 'models', `x${scale}`);
}

/** Reads the TF.js weight shards into named float32 arrays (Keras layout). */
function readWeights(dir: string, m: LayersModelJson): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const group of m.weightsManifest) {
    const bytes = Buffer.concat(group.paths.map((p) => readFileSync(join(dir, p))));
    let off = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32' || w.quantization) throw new Error(`weight ${w.name}: only unquantised float32 weights are supported`);
      const n = w.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = bytes.readFloatLE(off + 4 * i);
      off += 4 * n;
      out.set(w.name, { shape: w.shape, data });
    }
    if (off !== bytes.length) throw new Error(`weight shards hold ${bytes.length} bytes, manifest describes ${off}`);
  }
  return out;
}

/** Keras conv kernel [kh, kw, in, out] → ONNX [out, in, kh, kw]. */
function convKernel(shape: number[], data: Float32Array): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = shape;
  const o = new Float32Array(data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let c = 0; c < cout; c++) o[((c * cin + i) * kh + y) * kw + x] = data[((y * kw + x) * cin + i) * cout + c];
  return { dims: [cout, cin, kh, kw], data: o };
}

/**
 * The tensors a built model takes and gives: `float` — float32 NCHW [1, 3, H, W] named "input" and
 * "output" [1, 3, sH, sW], values as the model was trained (0..255 for the RDN models); `rgb8` —
 * the image's own bytes, uint8 NHWC [1, H, W, 3] in and out, converted inside the graph (Cast,
 * Transpose; the output clipped to 0..255 and rounded half to even, as a Uint8ClampedArray would),
 * so onnxruntime does the conversions the caller would otherwise do pixel by pixel in JavaScript.
 */
export type SrIo = 'float' | 'rgb8';

/**
 * Converts a Keras functional model of Conv2D / Activation(relu) / Concatenate / Add /
 * UpSampling2D(nearest) layers to ONNX, with the tensors `io` names.
 */
export function kerasToOnnx(m: LayersModelJson, weights: Map<string, { shape: number[]; data: Float32Array }>, io: SrIo = 'float'): Buffer {
  const cfg = m.modelTopology.model_config.config;
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const names = new Map<string, string>(); // keras layer → onnx value
  const w = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t;
  };
  for (const layer of cfg.layers) {
    const c = layer.config;
    const ins = (layer.inbound_nodes[0] ?? []).map(([src]) => {
      const v = names.get(src);
      if (!v) throw new Error(`layer ${layer.name}: input ${src} not defined yet`);
      return v;
    });
    const out = layer.name;
    switch (layer.class_name) {
      case 'InputLayer':
        if (io === 'rgb8') {
          nodes.push({ op: 'Cast', inputs: ['input'], outputs: ['input.f'], attrs: { to: DT.FLOAT } });
          nodes.push({ op: 'Transpose', inputs: ['input.f'], outputs: ['input.nchw'], attrs: { perm: [0, 3, 1, 2] } });
        }
        names.set(layer.name, io === 'rgb8' ? 'input.nchw' : 'input');
        continue;
      case 'Conv2D': {
        if (c.data_format !== 'channels_last' || (c.groups ?? 1) !== 1) throw new Error(`layer ${layer.name}: unsupported Conv2D config`);
        if (c.strides[0] !== 1 || c.strides[1] !== 1 || c.dilation_rate[0] !== 1 || c.dilation_rate[1] !== 1) throw new Error(`layer ${layer.name}: only stride 1, dilation 1`);
        const k = w(`${layer.name}/kernel`);
        const kt = convKernel(k.shape, k.data);
        const [kh, kw] = c.kernel_size as number[];
        const pads = c.padding === 'same' ? [(kh - 1) >> 1, (kw - 1) >> 1, kh >> 1, kw >> 1] : [0, 0, 0, 0];
        if (c.padding === 'same' && (kh % 2 === 0 || kw % 2 === 0)) throw new Error(`layer ${layer.name}: even 'same' kernels unsupported`);
        inits.push({ name: `${layer.name}.w`, dims: kt.dims, data: kt.data });
        const convIn = [ins[0], `${layer.name}.w`];
        if (c.use_bias) {
          const b = w(`${layer.name}/bias`);
          inits.push({ name: `${layer.name}.b`, dims: [b.data.length], data: b.data });
          convIn.push(`${layer.name}.b`);
        }
        const act = c.activation as string;
        const convOut = act === 'linear' ? out : `${out}.pre`;
        nodes.push({ op: 'Conv', inputs: convIn, outputs: [convOut], attrs: { kernel_shape: [kh, kw], pads, strides: [1, 1] } });
        if (act === 'relu') nodes.push({ op: 'Relu', inputs: [convOut], outputs: [out] });
        else if (act !== 'linear') throw new Error(`layer ${layer.name}: activation ${act} unsupported`);
        break;
      }
      case 'Activation':
        if (c.activation !== 'relu') throw new Error(`layer ${layer.name}: activation ${c.activation} unsupported`);
        nodes.push({ op: 'Relu', inputs: ins, outputs: [out] });
        break;
      case 'Concatenate':
        if (c.axis !== 3 && c.axis !== -1) throw new Error(`layer ${layer.name}: concat axis ${c.axis} unsupported`);
        nodes.push({ op: 'Concat', inputs: ins, outputs: [out], attrs: { axis: 1 } });
        break;
      case 'Add':
        nodes.push({ op: 'Sum', inputs: ins, outputs: [out] });
        break;
      case 'UpSampling2D': {
        if (c.interpolation !== 'nearest') throw new Error(`layer ${layer.name}: interpolation ${c.interpolation} unsupported`);
        const [sh, sw] = c.size as number[];
        inits.push({ name: `${layer.name}.scales`, dims: [4], data: new Float32Array([1, 1, sh, sw]) });
        // Keras nearest upsampling repeats each pixel: asymmetric coordinates, floor.
        nodes.push({
          op: 'Resize',
          inputs: [ins[0], '', `${layer.name}.scales`],
          outputs: [out],
          attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
        });
        break;
      }
      default:
        throw new Error(`layer ${layer.name}: Keras layer ${layer.class_name} unsupported`);
    }
    names.set(layer.name, out);
  }
  const outName = names.get(cfg.output_layers[0][0]);
  if (!outName) throw new Error('model output not found');
  if (io === 'rgb8') {
    inits.push({ name: 'clip.min', dims: [], data: Float32Array.of(0) }, { name: 'clip.max', dims: [], data: Float32Array.of(255) });
    nodes.push({ op: 'Clip', inputs: [outName, 'clip.min', 'clip.max'], outputs: ['output.clip'] });
    nodes.push({ op: 'Round', inputs: ['output.clip'], outputs: ['output.round'] });
    nodes.push({ op: 'Cast', inputs: ['output.round'], outputs: ['output.u8'], attrs: { to: DT.UINT8 } });
    nodes.push({ op: 'Transpose', inputs: ['output.u8'], outputs: ['output'], attrs: { perm: [0, 2, 3, 1] } });
  } else nodes.push({ op: 'Identity', inputs: [outName], outputs: ['output'] });
  const g: OnnxGraph = {
    name: 'esrgan-slim',
    nodes,
    initializers: inits,
    inputs: io === 'rgb8' ? [{ name: 'input', dims: [1, 'h', 'w', 3], type: DT.UINT8 }] : [{ name: 'input', dims: [1, 3, 'h', 'w'] }],
    outputs: io === 'rgb8' ? [{ name: 'output', dims: [1, 'H', 'W', 3], type: DT.UINT8 }] : [{ name: 'output', dims: [1, 3, 'H', 'W'] }],
  };
  return encodeModel(g);
}

function readModelJson(scale: SrScale): { dir: string; m: LayersModelJson } {
  const dir = srModelDir(scale);
  const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as LayersModelJson;
  if (m.format !== 'layers-model') throw new Error(`${dir}/model.json is not a layers-model`);
  return { dir, m };
}

/**
 * The receptive radius of a Keras model of the layers kerasToOnnx accepts, in input pixels: how far
 * from an output pixel (in input coordinates) an input pixel can still change it. Walks the graph
 * taking the longest path: a k×k 'same' conv adds (k−1)/2 pixels at its layer's resolution, an
 * upsampling by s multiplies the distance so far by s (it is then counted in finer pixels), and the
 * result is rounded up to whole input pixels. Tiles with this much context each side give exactly
 * the pixels of one pass over the whole image (test: *a tiled pass equals one pass*).
 */
export function receptiveRadius(m: LayersModelJson): number {
  const cfg = m.modelTopology.model_config.config;
  const at = new Map<string, { r: number; s: number }>(); // radius in pixels of resolution s × input
  for (const layer of cfg.layers) {
    const ins = (layer.inbound_nodes[0] ?? []).map(([src]) => at.get(src)!);
    const s = ins.length ? ins[0].s : 1;
    let r = ins.reduce((a, v) => Math.max(a, (v.r * s) / v.s), 0);
    let scale = s;
    const c = layer.config;
    if (layer.class_name === 'Conv2D') r += Math.max(((c.kernel_size as number[])[0] - 1) >> 1, ((c.kernel_size as number[])[1] - 1) >> 1);
    else if (layer.class_name === 'UpSampling2D') {
      const k = Math.max(...(c.size as number[]));
      r *= k;
      scale *= k;
    }
    at.set(layer.name, { r, s: scale });
  }
  const out = at.get(cfg.output_layers[0][0]);
  if (!out) throw new Error('model output not found');
  return Math.ceil(out.r / out.s);
}

/** Receptive radius (input pixels) of the package's super-resolution model for `scale`. */
export function srReceptiveRadius(scale: SrScale): number {
  return receptiveRadius(readModelJson(scale).m);
}

/** The ONNX bytes of the package's super-resolution model for `scale`. */
export function buildSrModel(scale: SrScale, io: SrIo = 'float'): Buffer {
  const { dir, m } = readModelJson(scale);
  return kerasToOnnx(m, readWeights(dir, m), io);
}
