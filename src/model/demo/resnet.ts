import onnxProto from 'onnx-proto';
import { prng } from '../../tools/random.js';

const { onnx } = onnxProto;

/**
 * The paper's architecture as an ONNX graph built by our own code: ResNet-34 (batch-norm folded
 * into the convolutions), its fc 1000, then FC 512, FC 256, FC 2 and a softmax ("probs").
 * Weights are deterministic pseudo-random numbers from a seed: the graph is real, the model is
 * untrained. `width` scales the channel counts (64 for the real network; 4 keeps tests fast).
 */

export interface ResNetOptions {
  height: number;
  width: number;
  baseChannels: number;
  seed: number;
  inputName?: string;
  outputName?: string;
  /** 'softmax' appends a Softmax node; 'logits' exposes the last Gemm's output. */
  outputKind?: 'softmax' | 'logits';
  /**
   * Trained weights for the four fully connected layers (fc 1000, FC 512, FC 256, FC 2), each
   * [out × in] weight and [out] bias, used instead of seeded ones; the backbone stays seeded.
   */
  head?: LayerWeights[];
  /** Receives every convolution's (folded) weights, in the order torchvision's resnet34 lists them. */
  onConv?: (layer: LayerWeights) => void;
  /**
   * Name of a second output: the Grad-CAM heat map of the abnormal-minus-normal logit over the
   * last block's grid (1×h×w), written as forward operations (see `gradCam`). None when absent.
   */
  heatmapName?: string;
}

export interface LayerWeights {
  weight: Float32Array;
  dims: number[];
  bias: Float32Array;
}

const STAGES: Array<[blocks: number, widthFactor: number, stride: number]> = [[3, 1, 1], [4, 2, 2], [6, 4, 2], [3, 8, 2]];

export function buildResNet34(options: ResNetOptions): Uint8Array {
  const rand = prng(options.seed);
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'probs';
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  let counter = 0;
  const fresh = (prefix: string): string => `${prefix}_${counter++}`;

  const seeded = (dims: number[], scale: number, bias = false): Float32Array => {
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = bias ? (rand() - 0.5) * scale : (rand() * 2 - 1) * scale;
    return values;
  };
  const initializer = (name: string, dims: number[], values: Float32Array): string => {
    const n = dims.reduce((a, b) => a * b, 1);
    if (values.length !== n) throw new RangeError(`${name}: ${values.length} values for ${dims.join('×')}`);
    initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
    return name;
  };

  const conv = (x: string, cin: number, cout: number, k: number, stride: number, gain = 1): string => {
    const name = fresh('conv');
    const dims = [cout, cin, k, k];
    const weight = seeded(dims, gain * Math.sqrt(6 / (cin * k * k)));
    const bias = seeded([cout], 0.1, true); // folded batch-norm shift
    options.onConv?.({ weight, dims, bias });
    const w = initializer(`${name}.weight`, dims, weight);
    const b = initializer(`${name}.bias`, [cout], bias);
    const y = `${name}.out`;
    const pad = Math.floor(k / 2);
    nodes.push({
      opType: 'Conv', name, input: [x, w, b], output: [y],
      attribute: [
        { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [k, k] },
        { name: 'strides', type: onnx.AttributeProto.AttributeType.INTS, ints: [stride, stride] },
        { name: 'pads', type: onnx.AttributeProto.AttributeType.INTS, ints: [pad, pad, pad, pad] },
      ],
    });
    return y;
  };
  const op = (opType: string, inputs: string[], attribute: onnxProto.onnx.IAttributeProto[] = []): string => {
    const name = fresh(opType.toLowerCase());
    const y = `${name}.out`;
    nodes.push({ opType, name, input: inputs, output: [y], attribute });
    return y;
  };
  const relu = (x: string): string => op('Relu', [x]);
  let fcIndex = 0;
  const fcs: Array<{ y: string; w: string; weight: Float32Array; fin: number }> = [];
  const gemm = (x: string, fin: number, fout: number, gain = 1): string => {
    const name = fresh('fc');
    const trained = options.head?.[fcIndex++];
    if (trained && (trained.dims[0] !== fout || trained.dims[1] !== fin)) {
      throw new RangeError(`trained ${name}: ${trained.dims.join('×')}, the graph needs ${fout}×${fin}`);
    }
    const weight = trained?.weight ?? seeded([fout, fin], gain * Math.sqrt(6 / fin));
    const w = initializer(`${name}.weight`, [fout, fin], weight);
    const b = initializer(`${name}.bias`, [fout], trained?.bias ?? seeded([fout], 0.1, true));
    const y = op('Gemm', [x, w, b], [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]);
    fcs.push({ y, w, weight, fin });
    return y;
  };

  const c0 = options.baseChannels;
  let x = relu(conv(inputName, 3, c0, 7, 2));
  x = op('MaxPool', [x], [
    { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [3, 3] },
    { name: 'strides', type: onnx.AttributeProto.AttributeType.INTS, ints: [2, 2] },
    { name: 'pads', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1, 1, 1] },
  ]);
  let channels = c0;
  for (const [blocks, factor, firstStride] of STAGES) {
    const cout = c0 * factor;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 ? firstStride : 1;
      const y = conv(relu(conv(x, channels, cout, 3, stride)), cout, cout, 3, 1, 0.3);
      const shortcut = stride !== 1 || channels !== cout ? conv(x, channels, cout, 1, stride) : x;
      x = relu(op('Add', [y, shortcut]));
      channels = cout;
    }
  }
  const features = x;
  x = op('Flatten', [op('GlobalAveragePool', [x])], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]);
  x = gemm(x, channels, 1000); // ResNet-34's own fc
  x = relu(gemm(x, 1000, 512));
  x = relu(gemm(x, 512, 256));
  const logits = gemm(x, 256, 2, 0.2);
  if (options.outputKind !== 'logits') {
    op('Softmax', [logits], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]);
  }
  // The last node (softmax, or the final Gemm for logits) produces the public output.
  nodes[nodes.length - 1].output = [outputName];
  const grid = gridOf(options.height, options.width);
  if (options.heatmapName) {
    const int64 = (name: string, values: number[]): string => {
      initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
      return name;
    };
    gradCam({ op, initializer, int64, features, channels, fcs, grid });
    nodes[nodes.length - 1].output = [options.heatmapName];
  }

  const valueInfo = (name: string, dims: number[]): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'xray-qc',
    producerVersion: '1',
    docString: 'ResNet-34 + FC 512/256/2 with deterministic untrained weights (xray-qc demo model)',
    graph: {
      name: 'electrode_resnet34',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(inputName, [1, 3, options.height, options.width])],
      output: [valueInfo(outputName, [1, 2]), ...(options.heatmapName ? [valueInfo(options.heatmapName, [1, grid.h, grid.w])] : [])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The last block's grid for an input: the stem (7×7/2), the max-pool (3×3/2) and three stride-2 stages. */
export function gridOf(height: number, width: number): { h: number; w: number } {
  const half = (n: number, k: number, pad: number): number => Math.floor((n + 2 * pad - k) / 2) + 1;
  let h = half(half(height, 7, 3), 3, 1);
  let w = half(half(width, 7, 3), 3, 1);
  for (let s = 0; s < 3; s++) {
    h = half(h, 3, 1);
    w = half(w, 3, 1);
  }
  return { h, w };
}

interface GradCamParts {
  op: (opType: string, inputs: string[], attribute?: onnxProto.onnx.IAttributeProto[]) => string;
  initializer: (name: string, dims: number[], values: Float32Array) => string;
  int64: (name: string, values: number[]) => string;
  /** The last block's output A (1×C×h×w). */
  features: string;
  channels: number;
  /** fc 1000, FC 512, FC 256, FC 2: each Gemm's output, its weight's name and values ([out × in]). */
  fcs: Array<{ y: string; w: string; weight: Float32Array; fin: number }>;
  grid: { h: number; w: number };
}

/**
 * Grad-CAM of y = logit(abnormal) − logit(normal) as forward operations (D43). Global average
 * pooling is linear, so ∂y/∂A_k,ij = ∂y/∂z_k / (h·w) for the pooled vector z; the head is
 * fc → FC 512 → ReLU → FC 256 → ReLU → FC 2, so ∂y/∂z = d·diag(m3)·W3·diag(m2)·W2·W1 with
 * d = W4[abnormal] − W4[normal] and m the ReLU masks (pre-activation > 0). The heat map is
 * ReLU(Σ_k w_k·A_k) with w = ∂y/∂z / (h·w): 1×h×w. Appended last, so its last node is the output.
 */
function gradCam(p: GradCamParts): void {
  const [w1, w2, w3, w4] = p.fcs;
  const d = new Float32Array(w4.fin);
  for (let i = 0; i < w4.fin; i++) d[i] = w4.weight[w4.fin + i] - w4.weight[i]; // row 1 (abnormal) − row 0 (normal)
  const int = onnx.AttributeProto.AttributeType.INT;
  const zero = p.initializer('gradcam.zero', [], new Float32Array([0]));
  const mask = (pre: string): string => p.op('Cast', [p.op('Greater', [pre, zero])], [{ name: 'to', type: int, i: onnx.TensorProto.DataType.FLOAT }]);
  const g3 = p.op('Mul', [p.initializer('gradcam.d', [1, w4.fin], d), mask(w3.y)]); // 1×256
  const g2 = p.op('Mul', [p.op('MatMul', [g3, w3.w]), mask(w2.y)]); // 1×512
  const g1 = p.op('MatMul', [g2, w2.w]); // 1×1000
  const gz = p.op('MatMul', [g1, w1.w]); // 1×C: ∂y/∂z
  const cells = p.grid.h * p.grid.w;
  const weights = p.op('Reshape', [p.op('Mul', [gz, p.initializer('gradcam.cells', [], new Float32Array([1 / cells]))]), p.int64('gradcam.shape', [1, p.channels, 1, 1])]);
  const cam = p.op('ReduceSum', [p.op('Mul', [p.features, weights]), p.int64('gradcam.axes', [1])], [{ name: 'keepdims', type: int, i: 0 }]);
  p.op('Relu', [cam]);
}
