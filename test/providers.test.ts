import { describe, expect, it } from 'vitest';
import { providerOption, tensorrtEnvironment } from '../src/infer/providers.js';
import { parseConfig, modelOptions } from '../src/service/config.js';

describe('execution provider settings', () => {
  it('TensorRT settings become the ORT_TENSORRT_* variables, only when tensorrt is configured', () => {
    expect(tensorrtEnvironment(['cuda', 'cpu'], { fp16: true, int8: false, engine_cache_dir: '/x' })).toEqual({});
    expect(tensorrtEnvironment(['tensorrt', 'cuda', 'cpu'], { fp16: true, int8: false, engine_cache_dir: '/var/cache/trt' })).toEqual({
      ORT_TENSORRT_FP16_ENABLE: '1', ORT_TENSORRT_INT8_ENABLE: '0', ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1', ORT_TENSORRT_CACHE_PATH: '/var/cache/trt',
    });
    expect(tensorrtEnvironment(['tensorrt'], { fp16: false, int8: true, engine_cache_dir: null })).toEqual({
      ORT_TENSORRT_FP16_ENABLE: '0', ORT_TENSORRT_INT8_ENABLE: '1', ORT_TENSORRT_ENGINE_CACHE_ENABLE: '0',
    });
  });

  it('GPU providers get the device id; cpu is a plain name', () => {
    expect(providerOption('cpu', 1)).toBe('cpu');
    expect(providerOption('cuda', 1)).toEqual({ name: 'cuda', deviceId: 1 });
    expect(providerOption('tensorrt', 0)).toEqual({ name: 'tensorrt', deviceId: 0 });
  });

  it('the config keeps the provider order and resolves the engine cache against the config folder', () => {
    const c = parseConfig({
      station_id: 's', capture: { dir: 'c' }, database: { path: 'a.db' }, mqtt: { url: 'mqtt://h' },
      model: { dir: 'm', providers: ['tensorrt', 'cuda', 'cpu'], device_id: 1, tensorrt: { engine_cache_dir: 'trt' } },
    }, '/etc/xray-qc/config.yaml', {});
    expect(modelOptions(c)).toMatchObject({ providers: ['tensorrt', 'cuda', 'cpu'], deviceId: 1 });
    expect(c.model.tensorrt).toEqual({ fp16: true, int8: false, engine_cache_dir: '/etc/xray-qc/trt' });
  });
});
