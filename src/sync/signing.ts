import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XrayError } from '../errors.js';

/**
 * ed25519 over the exact bytes of manifest.json. `manifest.sig` holds the 64-byte signature in
 * base64 (one line). The manifest lists every file with its size and sha256, so one signature
 * covers the whole bundle.
 */

export async function keygen(outDir: string): Promise<{ privateKey: string; publicKey: string }> {
  await mkdir(outDir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(outDir, 'private.pem');
  const pub = join(outDir, 'public.pem');
  const refuseOverwrite = (err: NodeJS.ErrnoException): never => {
    throw err.code === 'EEXIST' ? new XrayError('USAGE_INVALID', `${err.path ?? outDir}: a key is already there (keygen never overwrites a key)`) : err;
  };
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' }).catch(refuseOverwrite);
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }), { flag: 'wx' }).catch(refuseOverwrite);
  return { privateKey: priv, publicKey: pub };
}

export async function signBundle(bundleDir: string, privateKeyPem: string): Promise<string> {
  let key;
  try {
    key = createPrivateKey(await readFile(privateKeyPem));
  } catch (err) {
    throw new XrayError('USAGE_INVALID', `${privateKeyPem}: not an ed25519 private key (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new XrayError('USAGE_INVALID', `${privateKeyPem} is not an ed25519 private key`);
  const manifest = await readFile(join(bundleDir, 'manifest.json'));
  const signature = sign(null, manifest, key);
  const path = join(bundleDir, 'manifest.sig');
  await writeFile(path, `${signature.toString('base64')}\n`);
  return path;
}

export async function loadPublicKeys(paths: string[]): Promise<Array<{ path: string; key: KeyObject }>> {
  const keys = [];
  for (const path of paths) {
    const key = createPublicKey(await readFile(path));
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${path} is not an ed25519 public key`);
    keys.push({ path, key });
  }
  return keys;
}

/** The path of the trusted key that verifies, or null. */
export function verifyManifest(manifest: Uint8Array, sigText: string, keys: Array<{ path: string; key: KeyObject }>): string | null {
  const sig = Buffer.from(sigText.trim(), 'base64');
  if (sig.length !== 64) return null;
  for (const k of keys) if (verify(null, manifest, k.key, sig)) return k.path;
  return null;
}
