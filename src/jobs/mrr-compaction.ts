// Keeps the MRR aggregates compact: five times a second, the tenants with customers marked dirty
// by writes have them brought up to date (src/services/metrics.ts, compactMetrics), in batches.
// Reads are exact either way (they correct for what is still dirty); this keeps them cheap: a
// read pays for the customers written since the last round, so the rounds come often.
import { Counter } from 'prom-client';
import { tenantsToCompact } from '../analytics/mrr.js';
import type { Db } from '../database/connection.js';
import type { Logger } from '../logger.js';
import { compactMetrics } from '../services/metrics.js';
import { type RunningJob, startPeriodic } from './periodic.js';

const BATCH = 1000;

const compactedTotal = new Counter({
  name: 'mrr_customers_compacted_total',
  help: 'Customers whose MRR series the worker brought up to date after writes marked them.',
});

export function startMrrCompaction(
  ctx: { db: Db; ownerDb: Db },
  logger: Logger,
  intervalMs = 200,
): RunningJob {
  return startPeriodic(
    async (stopping) => {
      for (const tenantId of await tenantsToCompact(ctx.ownerDb, 100)) {
        for (let done = BATCH; done === BATCH && !stopping();) {
          done = await compactMetrics(ctx, tenantId, BATCH);
          if (done > 0) compactedTotal.inc(done);
        }
        if (stopping()) return;
      }
    },
    { intervalMs, logger, failure: 'MRR compaction failed; retrying in a moment' },
  );
}
