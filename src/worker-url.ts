import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The compiled file of a worker thread: beside the caller in dist/, or under dist/ when the caller
 * runs from src/ (tests); every vitest run builds dist/ from the current sources first
 * (test/global-setup.ts), so a test never runs a stale worker (docs/decisions.md D6).
 */
export function compiledWorkerUrl(callerUrl: string, relative: string): URL {
  const url = new URL(relative, callerUrl);
  if (!callerUrl.endsWith('.ts')) return url;
  const path = fileURLToPath(url);
  const at = path.lastIndexOf('/src/');
  return pathToFileURL(`${path.slice(0, at)}/dist/${path.slice(at + 5)}`);
}
