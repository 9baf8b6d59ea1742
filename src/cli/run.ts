import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../service/config.js';
import { Daemon } from '../service/daemon.js';
import { preflight } from '../service/preflight.js';
import { createLogger } from '../service/logger.js';
import { SystemdNotifier } from '../service/systemd.js';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the station daemon: watch the capture folder, score, audit in SQLite, publish over MQTT')
    .option('--config <file>', 'configuration file', 'config.yaml')
    .option('--check', 'check what run needs (config, model repository, folders, keys, sync URL, broker) and exit: 0 ok, 2 on any error')
    .action(async (o: { config: string; check?: boolean }) => {
      let config;
      try {
        config = loadConfig(o.config);
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const line of err.lines) process.stderr.write(`${line}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      if (o.check) {
        const findings = await preflight(config);
        const errors = findings.filter((f) => f.level === 'error');
        for (const f of errors) process.stderr.write(`${f.path}: ${f.message}\n`);
        for (const f of findings.filter((x) => x.level === 'warning')) process.stderr.write(`warning: ${f.path}: ${f.message}\n`);
        if (errors.length) {
          process.stderr.write(`${config.source}: ${errors.length} error${errors.length > 1 ? 's' : ''}: run would fail\n`);
          process.exitCode = 2;
          return;
        }
        process.stdout.write(`${config.source}: ok\n`);
        return;
      }
      // Database, WAL and downloaded models: never readable by other users (at least umask 027).
      const umask = process.umask(0o027);
      if ((umask | 0o027) !== 0o027) process.umask(umask | 0o027);
      const logger = createLogger();
      const notifier = new SystemdNotifier(logger);
      const daemon = new Daemon(config, logger, notifier, packageVersion());
      const abort = new AbortController();
      let exitCode = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        abort.abort();
        const timer = setTimeout(() => {
          logger.error({ timeoutMs: config.service.stop_timeout_ms }, 'stop took too long; exiting');
          process.exit(1);
        }, config.service.stop_timeout_ms);
        timer.unref();
        void daemon.stop(signal).then(() => process.exit(exitCode));
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        await daemon.start(abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return; // stopping because of a signal
        logger.fatal({ err: (err as Error).message, code: (err as { code?: string }).code }, 'could not start');
        exitCode = 1;
        await daemon.stop('start failed');
        process.exit(1);
      }
      logger.info(daemon.summary());
      // Runs until a signal arrives.
      await new Promise<void>(() => undefined);
    });
}
