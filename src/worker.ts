// The background worker: pg-boss jobs, run through the same services and tenant transactions as
// requests. Started inside `make start` (JOBS=on, the default) or alone (`make worker`,
// src/worker-main.ts). pg-boss was chosen over graphile-worker because a job that a SIGKILLed
// worker held comes back by itself (its expiry, JOB_TIMEOUT_SECONDS), and it runs on Node 20;
// both can enqueue inside our own transaction. The webhook dispatcher (src/webhooks/) and the
// MRR compaction (src/jobs/mrr-compaction.ts) and the wallet expiry sweep (src/jobs/wallet-expiry.ts)
// run here too. Every metric of the worker is in prom-client's default registry: /metrics of the API
// process that runs the worker shows them, and `make worker` serves them itself.
import { sql } from 'kysely';
import { Counter, Gauge, register } from 'prom-client';
import { reportJobEndFailures } from './jobs/job-end-failures.js';
import PgBoss from 'pg-boss';
import { type PaymentGateway, simulatedGateway } from './billing/gateway.js';
import type { Config } from './config.js';
import { APP_ROLE, createDb, type Db } from './database/connection.js';
import type { Logger } from './logger.js';
import { DUE_QUEUE, type DueScope, scopeKey } from './queries/jobs.js';
import { countPendingDeliveries } from './queries/webhooks.js';
import { performDueWorkUntil, resumeStalledClocks } from './services/due-work.js';
import { startMrrCompaction } from './jobs/mrr-compaction.js';
import { startWalletExpiry } from './jobs/wallet-expiry.js';
import { startWebhookDispatcher } from './webhooks/dispatcher.js';

/** The job settings the worker itself uses (the metrics port is make worker's); defaults as in config.ts. */
type Defaulted = 'maintenanceSeconds' | 'retryLimit' | 'retryDelaySeconds';
export type WorkerJobSettings = Omit<Config['jobs'], 'metricsPort' | Defaulted> &
  Partial<Pick<Config['jobs'], Defaulted>>;

export interface WorkerOptions {
  jobs: WorkerJobSettings;
  /** Webhook delivery settings; without them no dispatcher runs (tests that drive it themselves). */
  webhooks?: Config['webhooks'];
  dbPoolSize?: number;
  gateway?: PaymentGateway;
  /** Tests: poll more often than the setting allows (seconds, at least 0.5). */
  pollSeconds?: number;
  /** How long one job performs due work before it hands the rest to a new job (ms; tests). */
  sliceMs?: number;
}

export interface RunningWorker {
  /** Stops taking jobs and waits for the running one (up to timeoutMs), then closes the pools. */
  stop(timeoutMs?: number): Promise<void>;
}

const WORK_LOOPS = 2;
/**
 * A job's share of a loop: a catch-up longer than this goes on in a new job, queued behind the
 * jobs already waiting (a clock's advance waits seconds, not the minutes of a tenant's import).
 */
const SLICE_MS = 10_000;

const jobsTotal = new Counter({
  name: 'jobs_total',
  help: 'Background jobs finished, by queue and outcome (completed or failed; a failed job is retried).',
  labelNames: ['queue', 'outcome'] as const,
});
const stepsTotal = new Counter({
  name: 'billing_steps_total',
  help: 'Billing steps performed by jobs (renewals, submissions, settlements, retries, cancellations).',
});

/**
 * pg-boss's schema and our queue; the app role may enqueue (from inside its transactions).
 * Serialized across processes by an advisory lock: replicas that start together would otherwise
 * race on the same catalog rows (GRANT fails with "tuple concurrently updated").
 */
export async function installQueue(ownerUrl: string, jobs: WorkerJobSettings): Promise<void> {
  const owner = createDb(ownerUrl, { poolSize: 1 });
  try {
    await owner.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtext('subscriptions-api:install-queue'))`.execute(conn);
      try {
        const boss = new PgBoss({ connectionString: ownerUrl, max: 1, supervise: false, schedule: false });
        boss.on('error', () => {});
        await boss.start();
        try {
          await createQueue(boss, jobs);
        } finally {
          await boss.stop({ graceful: false, wait: true });
        }
        await sql
          .raw(
            `grant usage on schema pgboss to ${APP_ROLE}; grant select on pgboss.queue to ${APP_ROLE}; grant insert, select (id) on pgboss.job to ${APP_ROLE}`,
          )
          .execute(conn);
      } finally {
        await sql`select pg_advisory_unlock(hashtext('subscriptions-api:install-queue'))`.execute(conn);
      }
    });
  } finally {
    await owner.destroy();
  }
}

async function createQueue(boss: PgBoss, jobs: WorkerJobSettings) {
  // Retried with exponential backoff and jitter (by default 2 s doubling, at most 10 times:
  // about an hour in all); a job still failing then stays `failed` in pgboss.job with its last
  // error in `output`.
  const options = {
    name: DUE_QUEUE,
    policy: 'stately' as const,
    retryLimit: jobs.retryLimit ?? 10,
    retryDelay: jobs.retryDelaySeconds ?? 2,
    retryBackoff: true,
    expireInSeconds: jobs.timeoutSeconds,
  };
  if (await boss.getQueue(DUE_QUEUE)) await boss.updateQueue(DUE_QUEUE, options);
  else await boss.createQueue(DUE_QUEUE, options);
}

export async function startWorker(
  ownerUrl: string,
  logger: Logger,
  options: WorkerOptions,
): Promise<RunningWorker> {
  const { jobs } = options;
  reportJobEndFailures();
  const boss = new PgBoss({
    connectionString: ownerUrl,
    max: 2,
    ...(jobs.maintenanceSeconds ? { maintenanceIntervalSeconds: jobs.maintenanceSeconds } : {}),
  });
  boss.on('error', (error) => logger.warn({ err: error }, 'job queue error'));
  await installQueue(ownerUrl, jobs);
  await boss.start();
  const poolSize = options.dbPoolSize ?? 4;
  const db: Db = createDb(ownerUrl, { poolSize, asAppRole: true });
  const ownerDb: Db = createDb(ownerUrl, { poolSize: 1 });
  const ctx = {
    db,
    ownerDb,
    gateway: options.gateway ?? simulatedGateway,
    settlementDelayScale: jobs.settlementDelayScale,
  };

  // pg-boss's states: created (waiting), retry (failed, to be retried), active (running),
  // completed, cancelled, failed (gave up; the row keeps its last error in `output`).
  const depth = new Gauge({
    name: 'job_queue_depth',
    help: 'Jobs in pg-boss by queue and state (created = waiting, retry = waiting after a failure, active = running, failed = gave up).',
    labelNames: ['queue', 'state'] as const,
    registers: [],
    async collect() {
      const { rows } = await sql<{ state: string; count: string }>`
        select state, count(*) as count from pgboss.job where name = ${DUE_QUEUE}
        and state in ('created', 'retry', 'active', 'failed') group by state`.execute(ownerDb);
      this.reset();
      for (const state of ['created', 'retry', 'active', 'failed']) {
        const found = rows.find((row) => row.state === state);
        this.set({ queue: DUE_QUEUE, state }, Number(found?.count ?? 0));
      }
    },
  });
  const pending = new Gauge({
    name: 'webhook_deliveries_pending',
    help: 'Webhook deliveries not yet succeeded or given up (waiting for their first attempt or a retry).',
    registers: [],
    async collect() {
      this.set(await countPendingDeliveries(ownerDb));
    },
  });
  register.registerMetric(depth);
  register.registerMetric(pending);

  // Real time is looked at every minute, whatever else happens; writes add wake-ups.
  await boss.schedule(DUE_QUEUE, '* * * * *', {}, { singletonKey: 'real:*' });
  // Two loops, so that one long job (a test clock advanced by years) leaves the other free for
  // the rest. After each job a loop fetches the next at once (notifyWorker): pg-boss would
  // otherwise wait its polling interval after every job, not only when the queue is empty.
  const loops: string[] = [];
  const handler =
    (loop: number) =>
    async ([job]: PgBoss.Job<DueScope>[]) => {
      try {
        await perform(job!);
      } finally {
        const id = loops[loop];
        if (id) boss.notifyWorker(id);
      }
    };
  const perform = async (job: PgBoss.Job<DueScope>) => {
    const started = Date.now();
    try {
      const { steps, finished } = await performDueWorkUntil(
        ctx,
        job.data,
        started + (options.sliceMs ?? SLICE_MS),
      );
      // The rest in a job of its own, behind those waiting (one waiting per scope: stately).
      if (!finished) await boss.send(DUE_QUEUE, job.data, { singletonKey: scopeKey(job.data) });
      // The minute schedule (every tenant's real time) also queues again the catch-ups of test
      // clocks whose job failed for good: nothing else would, and the clock would stay advancing.
      if (!job.data.tenantId && !job.data.clockId) {
        const resumed = await resumeStalledClocks(ctx);
        if (resumed > 0) logger.warn({ clocks: resumed }, 'stalled test clocks queued again');
      }
      stepsTotal.inc(steps);
      jobsTotal.inc({ queue: DUE_QUEUE, outcome: 'completed' });
      if (steps > 0)
        logger.info(
          { job: job.id, scope: job.data, steps, ms: Date.now() - started, finished },
          finished ? 'billing work done' : 'billing work continues in a new job',
        );
    } catch (error) {
      jobsTotal.inc({ queue: DUE_QUEUE, outcome: 'failed' });
      logger.warn(
        { err: error, job: job.id, scope: job.data },
        'billing job failed (retried up to JOB_RETRY_LIMIT times, then failed)',
      );
      throw error;
    }
  };
  for (let loop = 0; loop < WORK_LOOPS; loop++) {
    loops.push(
      await boss.work<DueScope>(
        DUE_QUEUE,
        { batchSize: 1, pollingIntervalSeconds: options.pollSeconds ?? jobs.pollSeconds },
        handler(loop),
      ),
    );
  }
  const dispatcher =
    options.webhooks &&
    (await startWebhookDispatcher({
      ownerUrl,
      ownerDb,
      appDb: db,
      logger,
      allowPrivate: options.webhooks.allowPrivateUrls,
      timeoutMs: options.webhooks.timeoutSeconds * 1000,
      retryBaseMs: options.webhooks.retryBaseSeconds * 1000,
      retryForMs: options.webhooks.retryForSeconds * 1000,
    }));
  const compaction = startMrrCompaction({ db, ownerDb }, logger);
  const walletExpiry = startWalletExpiry({ db, ownerDb }, logger);
  logger.info('worker started');
  return {
    async stop(timeoutMs = 10_000) {
      register.removeSingleMetric('job_queue_depth');
      register.removeSingleMetric('webhook_deliveries_pending');
      await Promise.all([
        boss.stop({ graceful: true, wait: true, timeout: Math.max(timeoutMs, 1000) }),
        dispatcher?.stop(),
        compaction.stop(),
        walletExpiry.stop(),
      ]);
      await Promise.all([db.destroy(), ownerDb.destroy()]);
    },
  };
}
