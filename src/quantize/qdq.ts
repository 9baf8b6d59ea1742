import { DataType, intAttribute, tensorProto, type GraphIndex, type ModelProto, type NodeProto, type TensorProto } from './graph.js';

/**
 * Static QDQ in the form ONNX Runtime fuses (its qdq_transformer selectors): activations uint8
 * asymmetric — after each Relu (so the Relu is absorbed: zero point 0), after convolutions
 * without one and after residual Adds; weights int8 symmetric per output channel
 * (`DequantizeLinear` on axis 0, zero points 0); biases int32 with scale s_x·s_w; MaxPool's
 * output keeps its input's parameters; one DequantizeLinear per consumer. What is not a
 * convolution or a residual Add (the pooling and the fully connected head) stays fp32.
 */

export interface QuantPlan {
  /** Activations whose range is calibrated. */
  calibrated: string[];
  /** Activations that take another's parameters: MaxPool's output, its input's. */
  sameAs: Map<string, string>;
  convs: NodeProto[];
  adds: NodeProto[];
}

export interface ActivationParams { scale: number; zeroPoint: number }

export function planQuantization(g: GraphIndex): QuantPlan {
  const calibrated = new Set<string>();
  const sameAs = new Map<string, string>();
  const convs: NodeProto[] = [];
  const adds: NodeProto[] = [];
  /** A node's output as it is quantised: after its Relu when a Relu is its only consumer. */
  const quantisedOutput = (t: string): string => {
    const c = g.soleConsumer(t);
    return c?.opType === 'Relu' ? c.output![0] : t;
  };
  for (const n of g.nodes) {
    const inputs = n.input ?? [];
    if (n.opType === 'Conv' && !g.initializers.has(inputs[0]) && g.initializers.has(inputs[1])) {
      convs.push(n);
      calibrated.add(inputs[0]);
      calibrated.add(quantisedOutput(n.output![0]));
    } else if (n.opType === 'Add' && inputs.length === 2 && inputs.every((i) => !g.initializers.has(i))) {
      adds.push(n);
      inputs.forEach((i) => calibrated.add(i));
      calibrated.add(quantisedOutput(n.output![0]));
    }
  }
  for (const n of g.nodes) {
    if (n.opType !== 'MaxPool') continue;
    const [x] = n.input ?? [];
    const y = n.output![0];
    if (calibrated.has(x) && calibrated.has(y)) {
      calibrated.delete(y);
      sameAs.set(y, x);
    }
  }
  return { calibrated: [...calibrated], sameAs, convs, adds };
}

/** uint8 asymmetric parameters for a range (widened to hold 0, as the zero point must). */
export function activationParams(lo: number, hi: number): ActivationParams {
  const min = Math.min(lo, 0);
  const max = Math.max(hi, 0);
  const scale = Math.fround(max > min ? (max - min) / 255 : 1);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-min / scale)));
  return { scale, zeroPoint };
}

/** int8 symmetric per output channel: the channel's max |w| maps to 127. */
export function quantiseWeights(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
    const s = Math.fround(m > 0 ? m / 127 : 1);
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / s)));
  }
  return { q, scales };
}

/** The graph with QDQ nodes inserted and the convolutions' weights and biases quantised. */
export function insertQdq(g: GraphIndex, plan: QuantPlan, calibrated: Map<string, ActivationParams>): ModelProto {
  const params = new Map(calibrated);
  for (const [y, x] of plan.sameAs) params.set(y, params.get(x)!);
  const initializers: TensorProto[] = [];
  const replaced = new Set<string>();
  const nodes: NodeProto[] = [];
  let serial = 0;
  const scalar = (name: string, p: ActivationParams): void => {
    initializers.push(tensorProto(`${name}.scale`, DataType.FLOAT, [], Float32Array.of(p.scale)));
    initializers.push(tensorProto(`${name}.zero_point`, DataType.UINT8, [], Uint8Array.of(p.zeroPoint)));
  };
  for (const [t, p] of params) scalar(t, p);
  const quantise = (t: string): NodeProto => ({ opType: 'QuantizeLinear', name: `${t}.quantize`, input: [t, `${t}.scale`, `${t}.zero_point`], output: [`${t}.q`] });
  const dequantise = (t: string): { node: NodeProto; out: string } => {
    const out = `${t}.dq${serial++}`;
    return { out, node: { opType: 'DequantizeLinear', name: `${out}.node`, input: [`${t}.q`, `${t}.scale`, `${t}.zero_point`], output: [out] } };
  };
  for (const input of g.inputs) if (params.has(input)) nodes.push(quantise(input));
  const convSet = new Set(plan.convs);
  for (const original of g.nodes) {
    const n: NodeProto = { ...original, input: [...(original.input ?? [])] };
    const inputs = n.input!;
    if (convSet.has(original)) {
      const x = params.get(inputs[0])!;
      const [w, b] = [inputs[1], inputs[2]];
      const dims = g.dims(w);
      const { q, scales } = quantiseWeights(g.floats(w), dims[0]);
      initializers.push(tensorProto(`${w}.q`, DataType.INT8, dims, q), tensorProto(`${w}.scale`, DataType.FLOAT, [dims[0]], scales),
        tensorProto(`${w}.zero_point`, DataType.INT8, [dims[0]], new Int8Array(dims[0])));
      nodes.push({ opType: 'DequantizeLinear', name: `${w}.dequantize`, input: [`${w}.q`, `${w}.scale`, `${w}.zero_point`], output: [`${w}.dq`], attribute: [intAttribute('axis', 0)] });
      inputs[1] = `${w}.dq`;
      replaced.add(w);
      if (b) {
        const bias = g.floats(b);
        const bScales = scales.map((s) => Math.fround(x.scale * s));
        const bq = Int32Array.from(bias, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bScales[c]))));
        initializers.push(tensorProto(`${b}.q`, DataType.INT32, [dims[0]], bq), tensorProto(`${b}.scale`, DataType.FLOAT, [dims[0]], bScales),
          tensorProto(`${b}.zero_point`, DataType.INT32, [dims[0]], new Int32Array(dims[0])));
        nodes.push({ opType: 'DequantizeLinear', name: `${b}.dequantize`, input: [`${b}.q`, `${b}.scale`, `${b}.zero_point`], output: [`${b}.dq`], attribute: [intAttribute('axis', 0)] });
        inputs[2] = `${b}.dq`;
        replaced.add(b);
      }
    }
    inputs.forEach((t, k) => {
      if (!params.has(t) || g.initializers.has(t)) return;
      const { node, out } = dequantise(t); // one per consumer
      nodes.push(node);
      inputs[k] = out;
    });
    nodes.push(n);
    for (const o of n.output ?? []) if (params.has(o) && !g.outputs.has(o)) nodes.push(quantise(o));
  }
  const graph = g.model.graph!;
  return {
    ...g.model,
    opsetImport: (g.model.opsetImport ?? []).map((o) => (!o.domain && Number(o.version) < 13 ? { ...o, version: 13 } : o)),
    graph: { ...graph, node: nodes, initializer: [...(graph.initializer ?? []).filter((t) => !replaced.has(t.name!)), ...initializers] },
  } as ModelProto;
}
