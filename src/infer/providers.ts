import type { Provider } from './messages.js';

/**
 * Execution-provider settings. From Node, ONNX Runtime's `cuda` and `tensorrt` providers take only
 * a device id: the binding (`js/node/src/session_options_helper.cc`) fills TensorRT's V2 options
 * with `device_id` alone, and with V2 options the TensorRT EP ignores the ORT_TENSORRT_*
 * environment variables (docs/deploy.md). So TensorRT runs with its defaults (fp32, no engine
 * cache); the station offers no key that would promise otherwise.
 */

/** The executionProviders entry ORT's Node binding takes for one provider. */
export function providerOption(provider: Provider, deviceId: number): string | { name: string; deviceId: number } {
  return provider === 'cpu' ? 'cpu' : { name: provider, deviceId };
}
