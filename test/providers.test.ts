import { describe, expect, it } from 'vitest';
import { providerOption } from '../src/infer/providers.js';
import { ConfigError, modelOptions, parseConfig } from '../src/service/config.js';

describe('execution provider settings', () => {
  it('GPU providers get the device id; cpu is a plain name', () => {
    expect(providerOption('cpu', 1)).toBe('cpu');
    expect(providerOption('cuda', 1)).toEqual({ name: 'cuda', deviceId: 1 });
    expect(providerOption('tensorrt', 0)).toEqual({ name: 'tensorrt', deviceId: 0 });
  });

  const base = { station_id: 's', capture: { dir: 'c' }, database: { path: 'a.db' }, mqtt: { url: 'mqtt://h' } };

  it('the config keeps the provider order and the device id', () => {
    const c = parseConfig({ ...base, model: { dir: 'm', providers: ['tensorrt', 'cuda', 'cpu'], device_id: 1 } }, '/etc/xray-qc/config.yaml', {});
    expect(modelOptions(c)).toMatchObject({ providers: ['tensorrt', 'cuda', 'cpu'], deviceId: 1 });
  });

  it('model.tensorrt, which never reached TensorRT, is refused with why and what to do', () => {
    const parse = (): unknown => parseConfig({ ...base, model: { dir: 'm', providers: ['tensorrt', 'cpu'], tensorrt: { fp16: true } } }, '/etc/xray-qc/config.yaml', {});
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(/^model\.tensorrt: removed: onnxruntime-node passes only the device id to TensorRT.*delete this section$/);
  });
});
