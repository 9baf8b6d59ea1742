import onnxProto from 'onnx-proto';
import { XrayError } from '../errors.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export const DataType = onnx.TensorProto.DataType;

/** The operators the quantiser understands (a ResNet classifier as torch.onnx and our demo write it). */
export const KNOWN_OPS = new Set(['Conv', 'Relu', 'Add', 'MaxPool', 'GlobalAveragePool', 'AveragePool', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Softmax', 'Identity']);
/** Present in a graph that is quantised already. */
const QUANTISED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new XrayError('QUANTIZE_INVALID_INPUT', `${source}: not an ONNX model (${(err as Error).message})`);
  }
  if (!model.graph) throw new XrayError('QUANTIZE_INVALID_INPUT', `${source}: the model has no graph`);
  return model;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** What the quantiser needs to know of a graph: who produces and who consumes each tensor. */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly inputs: string[];
  readonly outputs: Set<string>;

  constructor(readonly model: ModelProto, source: string) {
    const g = model.graph!;
    for (const t of g.initializer ?? []) this.initializers.set(t.name!, t);
    this.inputs = (g.input ?? []).map((i) => i.name!).filter((n) => !this.initializers.has(n));
    this.outputs = new Set((g.output ?? []).map((o) => o.name!));
    const opset = (model.opsetImport ?? []).find((o) => !o.domain)?.version;
    if (opset !== undefined && Number(opset) < 13) {
      throw new XrayError('QUANTIZE_INVALID_INPUT', `${source}: opset ${Number(opset)}; per-channel QDQ needs opset 13 or later (export with opset_version=13+)`);
    }
    const quantised = (g.node ?? []).filter((n) => QUANTISED_OPS.has(n.opType!));
    if (quantised.length) throw new XrayError('QUANTIZE_INVALID_INPUT', `${source}: the model is quantised already (${quantised.length} ${quantised[0].opType} nodes)`);
    const unknown = [...new Set((g.node ?? []).map((n) => n.opType!).filter((t) => !KNOWN_OPS.has(t)))];
    if (unknown.length) throw new XrayError('QUANTIZE_INVALID_INPUT', `${source}: operators the quantiser does not know: ${unknown.join(', ')} (it knows ${[...KNOWN_OPS].join(', ')})`);
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) {
        if (!i || this.initializers.has(i)) continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
  }

  get nodes(): NodeProto[] {
    return this.model.graph!.node ?? [];
  }

  /** The only consumer of `tensor` if it has exactly one and is not a graph output, else null. */
  soleConsumer(tensor: string): NodeProto | null {
    const c = this.consumers.get(tensor) ?? [];
    return c.length === 1 && !this.outputs.has(tensor) ? c[0] : null;
  }

  floats(name: string): Float32Array {
    const t = this.initializers.get(name);
    if (!t) throw new XrayError('QUANTIZE_INVALID_INPUT', `initializer ${name} is missing`);
    if (t.dataType !== DataType.FLOAT) throw new XrayError('QUANTIZE_INVALID_INPUT', `initializer ${name} is not float32`);
    if (t.rawData && t.rawData.length) {
      const copy = new Uint8Array(t.rawData);
      return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
    }
    return Float32Array.from(t.floatData ?? []);
  }

  dims(name: string): number[] {
    return (this.initializers.get(name)?.dims ?? []).map(Number);
  }
}

export function tensorProto(name: string, dataType: number, dims: number[], data: Float32Array | Int8Array | Uint8Array | Int32Array): TensorProto {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function intAttribute(name: string, value: number): onnxProto.onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}
