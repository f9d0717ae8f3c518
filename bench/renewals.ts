// The worker under a pile of due work: COUNT (default 1,000) monthly card subscriptions whose
// renewal falls due at the same moment, in a scratch database of their own (issued invoices and
// payments can never be deleted, so no scratch tenant could be cleaned away). Measured twice:
//   - real time: the subscriptions start today, so their first period is due now, as after a
//     month boundary; one job wakes the worker (`make start`'s every-minute schedule would);
//   - a test clock: the same subscriptions on a clock advanced by one month (one step at a time,
//     the earliest first, so the order is the same on every run; see src/services/due-work.ts).
// Each renewal is three steps: the invoice issued, the payment submitted, the payment settled.
// Run alone with `node --import tsx bench/renewals.ts` (COUNT=...), or as part of `make bench`.
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { createDb, type Db } from '../src/database/connection.js';
import { migrateToLatest } from '../src/database/migrator.js';
import { openDatabase } from '../src/database/open.js';
import { silentLogger } from '../src/logger.js';
import { enqueueDue } from '../src/queries/jobs.js';
import { advanceTestClock, createTestClock } from '../src/services/payments.js';
import { createPlan } from '../src/services/plans.js';
import { createSubscription } from '../src/services/subscriptions.js';
import { createTenant } from '../src/services/tenants.js';
import { createUser } from '../src/services/users.js';
import { runMain } from '../src/startup.js';
import { installQueue, startWorker } from '../src/worker.js';

export interface RenewalTiming {
  count: number;
  /** From the wake-up to the last invoice issued, and to the last payment settled (seconds). */
  invoicedSeconds: number;
  paidSeconds: number;
  steps: number;
}

export interface RenewalBench {
  realTime: RenewalTiming;
  testClock: RenewalTiming;
}

const JOBS = { inProcess: true, timeoutSeconds: 300, pollSeconds: 1, settlementDelayScale: 1 };

/** In a new database on the server of `serverUrl`, dropped afterwards. */
export async function benchRenewals(serverUrl: string, count: number): Promise<RenewalBench> {
  const name = `bench_renewals_${process.pid}`;
  const admin = createDb(serverUrl, { poolSize: 1 });
  await sql.raw(`create database ${name}`).execute(admin);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const owner = createDb(url.toString(), { poolSize: 4 });
  const app = createDb(url.toString(), { poolSize: 8, asAppRole: true });
  try {
    await migrateToLatest(owner);
    await installQueue(url.toString(), JOBS);
    const realTime = await measure(url.toString(), owner, app, count, false);
    const testClock = await measure(url.toString(), owner, app, count, true);
    return { realTime, testClock };
  } finally {
    await Promise.all([owner.destroy(), app.destroy()]);
    await sql.raw(`drop database if exists ${name} with (force)`).execute(admin);
    await admin.destroy();
  }
}

async function measure(url: string, owner: Db, app: Db, count: number, onClock: boolean) {
  const { tenant } = await createTenant({ db: owner }, onClock ? 'renewals on a clock' : 'renewals');
  const actor = { tenantId: tenant.id, keyId: 'system' };
  const ctx = { db: app };
  const plan = await createPlan(ctx, actor, {
    code: 'monthly',
    name: 'Monthly',
    interval: 'month',
    price: { model: 'flat', amount: '29.00' },
  });
  if (plan.kind !== 'created') throw new Error(`plan: ${plan.kind}`);
  const start = onClock ? '2026-01-01' : new Date().toISOString().slice(0, 10);
  let clockId: string | undefined;
  if (onClock) {
    const clock = await createTestClock(ctx, actor, {
      name: 'bench',
      frozen_time: new Date('2026-01-01T00:00:00Z'),
    });
    clockId = clock.id;
  }
  // The subscriptions, 8 at a time; nothing runs them yet.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++;
        const user = await createUser(ctx, actor, { name: `Payer ${i}`, email: `payer-${i}@example.com` });
        if (user.kind !== 'created') throw new Error(`user: ${user.kind}`);
        const sub = await createSubscription(ctx, actor, {
          user_id: user.user.id,
          status: 'active',
          start_date: start,
          plan_id: plan.plan.plan.id,
          payment_method: 'pm_card_visa',
          payment_rail: 'card',
          ...(clockId ? { test_clock_id: clockId } : {}),
        });
        if (sub.kind !== 'created') throw new Error(`subscription: ${sub.kind}`);
      }
    }),
  );

  const worker = await startWorker(url, silentLogger(), { jobs: JOBS, pollSeconds: 0.5, dbPoolSize: 4 });
  const began = performance.now();
  try {
    if (clockId) {
      // On the clock, the first periods (January) and the renewals of February 1.
      const advanced = await advanceTestClock(ctx, actor, clockId, new Date('2026-02-01T00:00:00Z'));
      if (advanced.kind !== 'advancing') throw new Error(`advance: ${advanced.kind}`);
    } else {
      await owner.transaction().execute((trx) => enqueueDue(trx, { tenantId: tenant.id }));
    }
    const expected = clockId ? 2 * count : count;
    let invoicedSeconds = 0;
    for (;;) {
      const { rows } = await sql<{ issued: string; paid: string }>`
        select count(*) filter (where number is not null) as issued, count(*) filter (where status = 'paid') as paid
        from invoices where tenant_id = ${tenant.id}`.execute(owner);
      const issued = Number(rows[0]!.issued);
      const paid = Number(rows[0]!.paid);
      if (issued === expected && invoicedSeconds === 0) invoicedSeconds = (performance.now() - began) / 1000;
      if (paid === expected) break;
      if (performance.now() - began > 600_000) throw new Error(`stuck: ${issued} issued, ${paid} paid`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const paidSeconds = (performance.now() - began) / 1000;
    return { count: expected, invoicedSeconds, paidSeconds, steps: 3 * expected };
  } finally {
    await worker.stop(5000);
  }
}

export function formatRenewals(bench: RenewalBench): string {
  const row = (label: string, t: RenewalTiming) =>
    `| ${label} | ${t.count} | ${t.invoicedSeconds.toFixed(2)} s | ${t.paidSeconds.toFixed(2)} s | ${Math.round(t.steps / t.paidSeconds)} |`;
  return [
    '| renewals due at once, one worker (in process, 4 connections) | invoices | all issued | all paid | steps/s |',
    '| --- | --- | --- | --- | --- |',
    row('real time: a batch of due work per query', bench.realTime),
    row('a test clock advanced a month (first periods and renewals)', bench.testClock),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runMain(async () => {
    const database = await openDatabase(loadConfig());
    try {
      console.log(formatRenewals(await benchRenewals(database.url, Number(process.env.COUNT ?? 1000))));
    } finally {
      await database.stop();
    }
  });
}
