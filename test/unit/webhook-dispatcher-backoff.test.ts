// While the database is away, the webhook dispatcher's rounds and its listener's reconnections
// fail: they back off as the worker's other jobs do (jobs/periodic.ts), instead of logging a
// stack trace at every poll (an operator counted 24 lines a minute at the default 5 s).
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/database/connection.js';
import { createLogger } from '../../src/logger.js';
import { startWebhookDispatcher } from '../../src/webhooks/dispatcher.js';

describe('the webhook dispatcher with its database away', () => {
  it('backs off its failed rounds and reconnections, doubling the pause', async () => {
    // Nothing listens on port 1: every connection is refused at once.
    const away = 'postgres://nobody:nothing@127.0.0.1:1/none';
    const db = createDb(away, { poolSize: 1, connectTimeoutMs: 200 });
    const warnings: string[] = [];
    const logger = createLogger({ level: 'silent' });
    logger.warn = (...args: unknown[]) => void warnings.push(String(args[1]));
    const dispatcher = await startWebhookDispatcher({
      ownerDb: db,
      appDb: db,
      ownerUrl: away,
      logger,
      allowPrivate: true,
      pollMs: 40,
      retryBaseMs: 1000,
      retryForMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await dispatcher.stop();
    await db.destroy();
    const rounds = warnings.filter((w) => w.startsWith('webhook dispatch round failed'));
    const connects = warnings.filter((w) => w.startsWith('webhook listener could not connect'));
    // Pauses of 40, 80, 160, 320, 640 ms: at most 6 of each in 1.3 s (not one per 40 ms poll).
    expect(rounds.slice(0, 3)).toEqual([
      'webhook dispatch round failed; next try in 40 ms',
      'webhook dispatch round failed; next try in 80 ms',
      'webhook dispatch round failed; next try in 160 ms',
    ]);
    expect(rounds.length).toBeLessThanOrEqual(6);
    expect(connects.length).toBeGreaterThanOrEqual(3);
    expect(connects.length).toBeLessThanOrEqual(6);
  });
});
