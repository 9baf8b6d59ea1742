import { InvalidArgumentError, type Command } from 'commander';
import { parseListen } from '../review/auth.js';
import { ReviewServer } from '../review/server.js';
import { loadConfig } from '../service/config.js';

/** `xray-qc review serve`: the review page on its own (docs/review.md); `review.enabled` runs it inside the daemon. */
export function addReviewServe(review: Command): void {
  review.command('serve')
    .description('serve the review page: queue, captures with heat maps and label buttons, accuracy, models (loopback unless a token is set)')
    .option('--config <file>', 'station configuration', 'config.yaml')
    .option('--listen <host:port>', 'address to listen on (default: review.listen, 127.0.0.1:8080)', (v: string) => {
      try {
        parseListen(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      return v;
    })
    .action(async (o: { config: string; listen?: string }) => {
      const c = loadConfig(o.config);
      const server = new ReviewServer({
        database: c.database.path, modelDir: c.model.dir, stationId: c.station_id,
        listen: parseListen(o.listen ?? c.review.listen), token: c.review.token,
      });
      await server.start();
      process.stdout.write(`${JSON.stringify({ review: `http://${server.address}/`, token: c.review.token ? 'required' : 'none (loopback)' })}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          resolve();
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await server.stop();
    });
}
