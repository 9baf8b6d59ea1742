import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadBundle } from '../model/bundle.js';
import { ScoringSession } from './scoring.js';
import { addGolden } from '../sync/golden.js';
import { publish, serveRegistry } from '../sync/registry.js';
import { keygen, signBundle } from '../sync/signing.js';
import { parseNumber } from './options.js';

/** Training-host commands: keygen, golden, sign, registry (the operator's `models` are in models.ts). */
export function registerSyncCommands(program: Command): void {
  const model = program.commands.find((c) => c.name() === 'model')!;

  model.command('keygen').description('an ed25519 key pair for signing bundles (private.pem, public.pem)')
    .requiredOption('--out <dir>', 'where to write the keys (refuses to overwrite)')
    .action(async (o: { out: string }) => {
      process.stdout.write(`${JSON.stringify(await keygen(o.out))}\n`);
    });

  model.command('golden').description("score TIFFs with the bundle and store them as its smoke test (run before signing)")
    .option('--tolerance <t>', 'allowed |Δp_abnormal| on the station', parseNumber(0, 1), 0.001)
    .argument('<bundle>').argument('<tiffs...>')
    .action(async (bundle: string, tiffs: string[], o: { tolerance: number }) => {
      const session = await ScoringSession.open(bundle);
      try {
        const expected = await addGolden(resolve(bundle), (file) => session.score(file), tiffs, o.tolerance);
        process.stdout.write(`${JSON.stringify(expected)}\n`);
      } finally {
        await session.close();
      }
    });

  model.command('sign').description('write manifest.sig (ed25519 over the exact bytes of manifest.json)')
    .requiredOption('--key <private.pem>', 'the private key')
    .argument('<bundle>')
    .action(async (bundle: string, o: { key: string }) => {
      await loadBundle(bundle); // sign only what verifies
      process.stdout.write(`${await signBundle(resolve(bundle), o.key)}\n`);
    });

  const registry = program.command('registry').description('a static model registry for stations to sync from');
  registry.command('publish').description('lay the bundle out as <registry>/<name>/<version>/ and point the channel at it')
    .requiredOption('--registry <dir>').option('--channel <name>', 'channel', 'stable')
    .argument('<bundle>')
    .action(async (bundle: string, o: { registry: string; channel: string }) => {
      await loadBundle(bundle);
      process.stdout.write(`${JSON.stringify(await publish(resolve(bundle), resolve(o.registry), o.channel))}\n`);
    });
  registry.command('serve').description('serve the registry over HTTP (GET/HEAD, ETag); nginx or any static server works too')
    .requiredOption('--registry <dir>')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port', parseNumber(0, 65535, true), 8080)
    .action(async (o: { registry: string; host: string; port: number }) => {
      const server = serveRegistry(resolve(o.registry));
      await new Promise<void>((r) => server.listen(o.port, o.host, r));
      const addr = server.address() as { address: string; port: number };
      process.stdout.write(`serving ${resolve(o.registry)} on http://${addr.address}:${addr.port}/\n`);
      const stop = (): void => { server.close(); process.exit(0); };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await new Promise<void>(() => undefined);
    });
}
