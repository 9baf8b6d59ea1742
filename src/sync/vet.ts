import type { KeyObject } from 'node:crypto';
import type { ErrorCode } from '../errors.js';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { verifyManifest } from './signing.js';

/**
 * What a station checks of an offered bundle before a byte of it is downloaded or copied: one rule
 * for model sync (syncer.ts) and the operator's `xray-qc models install`, so that the two refuse
 * the same bundles. The checks that need the files (sizes, sha256, the graph, golden samples)
 * follow in the caller.
 */

export type SyncStep = 'pointer' | 'manifest' | 'signature' | 'version' | 'compatibility' | 'fitness' | 'download' | 'load' | 'golden' | 'activate';

/** Each refusal's code (errors.ts). */
export const STEP_CODES: Record<SyncStep, ErrorCode> = {
  pointer: 'SYNC_POINTER_INVALID', manifest: 'SYNC_MANIFEST_INVALID', signature: 'SYNC_SIGNATURE_INVALID', version: 'SYNC_VERSION_REFUSED',
  compatibility: 'SYNC_INCOMPATIBLE', fitness: 'SYNC_MODEL_UNFIT', download: 'SYNC_DOWNLOAD_FAILED', load: 'SYNC_LOAD_FAILED',
  golden: 'SYNC_GOLDEN_MISMATCH', activate: 'SYNC_ACTIVATE_FAILED',
};

export class Refused extends Error {
  constructor(readonly step: SyncStep, message: string) {
    super(message);
    this.name = 'Refused';
  }

  get code(): ErrorCode {
    return STEP_CODES[this.step];
  }
}

export interface VetPolicy {
  requireSignature: boolean;
  trustedKeys: Array<{ path: string; key: KeyObject }>;
  maxInputPixels: number;
  /** Accept a bundle whose manifest says `fit: false` (the fitness rule failed, docs/training.md). */
  allowUnfit: boolean;
}

export interface Offer {
  manifestBytes: Uint8Array;
  /** manifest.sig's text, or null when there is none. */
  sigText: string | null;
  /** The name and version the channel pointer promised, if any. */
  expect?: { name: string; version: number };
}

/** The offered manifest, or a `Refused` naming the first check it fails. */
export function vetOffer(offer: Offer, policy: VetPolicy, active: Manifest | null): Manifest {
  if (policy.requireSignature) {
    if (!offer.sigText) throw new Refused('signature', 'the manifest is not signed (no manifest.sig)');
    if (!verifyManifest(offer.manifestBytes, offer.sigText, policy.trustedKeys)) {
      throw new Refused('signature', 'manifest.sig does not verify with any trusted key (signed by another key, or the manifest was changed after signing)');
    }
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(JSON.parse(Buffer.from(offer.manifestBytes).toString('utf8')));
  } catch (err) {
    throw new Refused('manifest', (err as Error).message);
  }
  const want = offer.expect;
  if (want && (manifest.name !== want.name || manifest.version !== want.version)) {
    throw new Refused('manifest', `manifest is ${manifest.name} v${manifest.version}, the pointer says ${want.name} v${want.version}`);
  }
  if (active && manifest.name === active.name && manifest.version <= active.version) {
    throw new Refused('version', `v${manifest.version} is not newer than the active v${active.version} (only an operator may go back: xray-qc models activate)`);
  }
  if (manifest.input.height * manifest.input.width > policy.maxInputPixels) {
    throw new Refused('compatibility', `input ${manifest.input.height}×${manifest.input.width} exceeds this station's ${policy.maxInputPixels} pixels`);
  }
  if (manifest.fit === false && !policy.allowUnfit) throw new Refused('fitness', unfitReason(manifest));
  return manifest;
}

/** Why a `fit: false` bundle is refused, with the figures its training recorded where there are any. */
export function unfitReason(m: Manifest): string {
  const fitness = (m.metrics as { fitness?: { reason?: unknown } }).fitness;
  const why = typeof fitness?.reason === 'string' ? ` (${fitness.reason})` : '';
  return `${m.name} v${m.version} failed the fitness rule when it was trained${why}: its manifest says fit: false (docs/training.md)`;
}
