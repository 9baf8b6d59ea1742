import type { Provider } from './messages.js';

/**
 * Execution-provider settings. From Node, ONNX Runtime's `cuda` and `tensorrt` providers take only
 * a device id; TensorRT's own settings are environment variables read when a session is created
 * (ORT_TENSORRT_*), so the station's config is turned into those variables here.
 */

export interface TensorRtSettings {
  fp16: boolean;
  int8: boolean;
  engine_cache_dir: string | null;
}

/** The ORT_TENSORRT_* variables for these settings (empty when TensorRT is not configured). */
export function tensorrtEnvironment(providers: Provider[], trt: TensorRtSettings): Record<string, string> {
  if (!providers.includes('tensorrt')) return {};
  return {
    ORT_TENSORRT_FP16_ENABLE: trt.fp16 ? '1' : '0',
    ORT_TENSORRT_INT8_ENABLE: trt.int8 ? '1' : '0',
    ...(trt.engine_cache_dir
      ? { ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1', ORT_TENSORRT_CACHE_PATH: trt.engine_cache_dir }
      : { ORT_TENSORRT_ENGINE_CACHE_ENABLE: '0' }),
  };
}

/** The executionProviders entry ORT's Node binding takes for one provider. */
export function providerOption(provider: Provider, deviceId: number): string | { name: string; deviceId: number } {
  return provider === 'cpu' ? 'cpu' : { name: provider, deviceId };
}
