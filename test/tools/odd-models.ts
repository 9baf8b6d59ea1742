import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * Small ONNX graphs that misbehave on purpose, for model-sync tests:
 * - 'nan': NaN for every input (a NaN weight), caught by the warm-up check;
 * - 'nan-on-real-input': sqrt(−mean(x)) per channel: 0 for the zero warm-up tensor, NaN for a
 *   normalised electrode capture (positive mean), i.e. it passes loading and fails in service.
 */
export function oddModel(kind: 'nan' | 'nan-on-real-input', height = 128, width = 64): Uint8Array {
  const F = onnx.TensorProto.DataType.FLOAT;
  const nodes: onnxProto.onnx.INodeProto[] = [
    { opType: 'GlobalAveragePool', input: ['input'], output: ['pooled'] },
    { opType: 'Flatten', input: ['pooled'], output: ['flat'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
  ];
  let last = 'flat';
  if (kind === 'nan-on-real-input') {
    nodes.push({ opType: 'Neg', input: ['flat'], output: ['negated'] }, { opType: 'Sqrt', input: ['negated'], output: ['root'] });
    last = 'root';
  }
  const w = new Float32Array([0.5, -0.2, 0.1, -0.3, 0.4, 0.2]);
  if (kind === 'nan') w[0] = Number.NaN;
  nodes.push(
    { opType: 'Gemm', input: [last, 'W', 'B'], output: ['logits'], attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
    { opType: 'Softmax', input: ['logits'], output: ['probs'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
  );
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: kind,
      node: nodes,
      initializer: [
        { name: 'W', dims: [2, 3], dataType: F, rawData: new Uint8Array(w.buffer) },
        { name: 'B', dims: [2], dataType: F, rawData: new Uint8Array(new Float32Array([0, 0]).buffer) },
      ],
      input: [{ name: 'input', type: { tensorType: { elemType: F, shape: { dim: [1, 3, height, width].map((d) => ({ dimValue: d })) } } } }],
      output: [{ name: 'probs', type: { tensorType: { elemType: F, shape: { dim: [1, 2].map((d) => ({ dimValue: d })) } } } }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
