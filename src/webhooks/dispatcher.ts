// Sends webhook deliveries. Deliveries are rows (written with their events by a trigger, see
// db/migrations/202611240006_webhooks.ts), so nothing is lost while no dispatcher runs; a
// dispatcher wakes on the trigger's NOTIFY, polls as well (a notification can be missed while
// it reconnects), claims due deliveries with a lease, POSTs them and records each attempt in its
// tenant. Any number of dispatchers may run: a claim is one dispatcher's until its lease ends.
// A failed attempt backs its endpoint off as a whole, and a claim takes a few deliveries per
// endpoint: one dead endpoint's backlog does not hold up the others (docs/webhooks.md).
import http from 'node:http';
import https from 'node:https';
import pg from 'pg';
import { Counter } from 'prom-client';
import type { Db } from '../database/connection.js';
import type { Logger } from '../logger.js';
import { MAX_BACKOFF_MS } from '../jobs/periodic.js';
import type { ClaimedDelivery } from '../queries/webhooks.js';
import {
  type AttemptResult,
  claimDueDeliveries,
  type DeliveryContext,
  loadSendable,
  nextDueAt,
  recordAttempt,
  type RetrySettings,
} from '../services/webhook-deliveries.js';
import { signedRequest } from './sign.js';
import { type LookupFunction, pinnedLookup, RefusedAddressError, urlProblem } from './ssrf.js';

export const NOTIFY_CHANNEL = 'webhook_deliveries';

const attemptsTotal = new Counter({
  name: 'webhook_delivery_attempts_total',
  help: 'Webhook delivery attempts, by outcome: succeeded (2xx), http_error (another status), timeout, network_error, refused (a forbidden address).',
  labelNames: ['outcome'] as const,
});
const finishedTotal = new Counter({
  name: 'webhook_deliveries_finished_total',
  help: 'Webhook deliveries that ended, by status (succeeded, or failed after retrying for the retry limit).',
  labelNames: ['status'] as const,
});

export interface DeliverOptions extends RetrySettings {
  /** The owner's pool: claims across tenants (ids only). */
  ownerDb: Db;
  /** The app role's pool: each delivery is read and recorded in its tenant, under RLS. */
  appDb: Db;
  logger: Logger;
  /** WEBHOOKS_ALLOW_PRIVATE_URLS: plain http and private addresses (development and tests only). */
  allowPrivate: boolean;
  /** Per attempt, connecting to the last byte of the status line (default 10 s). */
  timeoutMs?: number;
  /** How long a claim lasts before another dispatcher may take it (default timeoutMs + 30 s). */
  leaseMs?: number;
  /** Deliveries claimed (and sent concurrently) at a time (default 20). */
  batchSize?: number;
  /**
   * Of one endpoint, at most this many per claim (default 5); one while it is failing. With the
   * endpoint's backoff, what keeps one endpoint's backlog from delaying the others'.
   */
  perEndpoint?: number;
  /** Tests: resolves names instead of the system resolver. */
  lookup?: LookupFunction;
}

export interface DeliverySummary {
  /** Deliveries claimed and attempted. */
  attempted: number;
  succeeded: number;
  /** Attempts that did not succeed (the delivery is retried, or failed for good). */
  failed: number;
}

/** POSTs the body, resolving to a status or an error; never rejects. */
function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; allowPrivate: boolean; lookup?: LookupFunction | undefined },
): Promise<Omit<AttemptResult, 'attemptedAt' | 'durationMs'> & { outcome: string }> {
  // Checked again at delivery: the setting may have changed, or the row been written otherwise.
  const problem = urlProblem(url, { allowPrivateUrls: options.allowPrivate });
  if (problem)
    return Promise.resolve({ statusCode: null, error: `refused: the URL ${problem}`, outcome: 'refused' });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: { statusCode: number | null; error: string | null; outcome: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    const request = client.request(target, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      // Every address the name resolves to is checked, and the socket connects only to those.
      lookup: pinnedLookup({ allowPrivateUrls: options.allowPrivate, lookup: options.lookup }),
      // A fresh connection each time: a pooled socket would skip the lookup (and its check).
      agent: false,
    });
    const timer = setTimeout(
      () =>
        finish({ statusCode: null, error: `timed out after ${options.timeoutMs} ms`, outcome: 'timeout' }),
      options.timeoutMs,
    );
    request.on('response', (response) => {
      // The status is the answer; the body is not read (nor waited for).
      const statusCode = response.statusCode ?? 0;
      const ok = statusCode >= 200 && statusCode < 300;
      finish({ statusCode, error: null, outcome: ok ? 'succeeded' : 'http_error' });
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof RefusedAddressError) {
        finish({ statusCode: null, error: `refused: ${error.message}`, outcome: 'refused' });
      } else {
        const code = error.code ? `${error.code}: ` : '';
        finish({ statusCode: null, error: `${code}${error.message}`, outcome: 'network_error' });
      }
    });
    request.end(body);
  });
}

/** Sends one claimed delivery and records the attempt, counted in summary; never rejects. */
async function attemptClaim(
  options: DeliverOptions,
  ctx: DeliveryContext,
  claim: ClaimedDelivery,
  timeoutMs: number,
  summary: DeliverySummary,
): Promise<void> {
  try {
    const sendable = await loadSendable(ctx, claim);
    if (!sendable) return;
    const attemptedAt = new Date();
    const started = performance.now();
    const request = signedRequest(sendable.event, claim.id, sendable.secrets, attemptedAt);
    const sent = await post(sendable.url, request.body, request.headers, {
      timeoutMs,
      allowPrivate: options.allowPrivate,
      lookup: options.lookup,
    });
    const durationMs = performance.now() - started;
    const recorded = await recordAttempt(
      ctx,
      claim,
      sendable,
      { attemptedAt, durationMs, statusCode: sent.statusCode, error: sent.error },
      options,
    );
    if (recorded.kind === 'lease-lost') {
      options.logger.warn({ delivery: claim.id }, 'webhook lease ran out during the attempt; not recorded');
      return;
    }
    attemptsTotal.inc({ outcome: sent.outcome });
    summary.attempted++;
    if (sent.outcome === 'succeeded') summary.succeeded++;
    else summary.failed++;
    if (recorded.status !== 'pending') finishedTotal.inc({ status: recorded.status });
    if (recorded.endpointDisabled) {
      options.logger.warn(
        { delivery: claim.id, tenant: claim.tenant_id },
        'webhook endpoint disabled: every attempt failed for the retry limit',
      );
    }
  } catch (error) {
    // The claim's lease runs out and the delivery is tried again: nothing is lost.
    options.logger.error({ err: error, delivery: claim.id }, 'webhook delivery failed unexpectedly');
  }
}

/**
 * Attempts a worker keeps in flight. An attempt is a socket waiting, cheap in Node: many, so that
 * endpoints that do not answer (5 attempts each at most, holding their slots until the timeout,
 * then 1 each while they fail) must be twenty to delay a healthy endpoint's delivery.
 */
const SLOTS = 100;

const timeoutOf = (options: DeliverOptions) => options.timeoutMs ?? 10_000;
const leaseOf = (options: DeliverOptions) => options.leaseMs ?? timeoutOf(options) + 30_000;

/**
 * One round: claims up to batchSize due deliveries (a few per endpoint, none of an endpoint backing
 * off: see claimDueDeliveries), sends them concurrently and records each attempt. Returns what it
 * did; a full batch means more may be due. (The running dispatcher does not wait for a whole
 * round: see startWebhookDispatcher.)
 */
export async function deliverDue(options: DeliverOptions): Promise<DeliverySummary> {
  const ctx: DeliveryContext = { db: options.appDb, ownerDb: options.ownerDb };
  const claimed = await claimDueDeliveries(
    ctx,
    options.batchSize ?? SLOTS,
    leaseOf(options),
    options.perEndpoint,
  );
  const summary: DeliverySummary = { attempted: 0, succeeded: 0, failed: 0 };
  await Promise.all(claimed.map((claim) => attemptClaim(options, ctx, claim, timeoutOf(options), summary)));
  return summary;
}

export interface DispatcherOptions extends DeliverOptions {
  /** The owner's connection string: a dedicated connection LISTENs for new deliveries. */
  ownerUrl: string;
  /** How often to look for due deliveries without a notification (default 5 s). */
  pollMs?: number;
}

export interface RunningDispatcher {
  /** Stops claiming, waits for the attempts in flight (each ends within timeoutMs), and closes the listener. */
  stop(): Promise<void>;
}

/**
 * Keeps up to batchSize attempts in flight, claiming due deliveries whenever a slot is free and
 * deliveries may be due: on NOTIFY, when an attempt ends, at the next due time, and every pollMs.
 */
export async function startWebhookDispatcher(options: DispatcherOptions): Promise<RunningDispatcher> {
  const pollMs = options.pollMs ?? 5000;
  const { logger } = options;
  let stopping = false;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let listener: pg.Client | undefined;

  const schedule = (ms: number) => {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(wake, Math.max(0, ms));
  };

  // Failed rounds (and failed reconnections) in a row back off as the worker's other jobs do
  // (jobs/periodic.ts): while the database is away, a few lines a minute, not one every poll.
  let failedRounds = 0;
  let failedConnects = 0;
  const backoff = (failures: number) =>
    Math.min(pollMs * 2 ** (failures - 1), Math.max(MAX_BACKOFF_MS, pollMs));

  // A pool of batchSize slots, not rounds that wait for their slowest attempt: whenever one ends,
  // its slot takes the next due delivery, so an attempt waiting for its timeout holds one slot,
  // not the deliveries claimed after it.
  const ctx: DeliveryContext = { db: options.appDb, ownerDb: options.ownerDb };
  const slots = options.batchSize ?? SLOTS;
  const inFlight = new Set<Promise<void>>();
  const summary: DeliverySummary = { attempted: 0, succeeded: 0, failed: 0 };

  async function round(): Promise<void> {
    let claimedAny = false;
    for (;;) {
      again = false;
      const free = slots - inFlight.size;
      if (free <= 0) return; // the next attempt to end wakes it
      const claimed = await claimDueDeliveries(ctx, free, leaseOf(options), options.perEndpoint);
      for (const claim of claimed) {
        const attempt: Promise<void> = attemptClaim(options, ctx, claim, timeoutOf(options), summary).finally(
          () => {
            inFlight.delete(attempt);
            wake();
          },
        );
        inFlight.add(attempt);
      }
      if (claimed.length > 0) claimedAny = true;
      if (stopping) return;
      // Slots left over, and no notification meanwhile: nothing more is due now.
      if (claimed.length < free && !again) break;
    }
    const next = await nextDueAt(ctx);
    if (failedRounds > 0) logger.info(`webhook dispatch recovered after ${failedRounds} failed rounds`);
    failedRounds = 0;
    // Due already, yet nothing was claimed: it waits for its endpoint's attempts in flight (a few
    // per endpoint at a time), whose ends wake the dispatcher; otherwise it would spin on it.
    const wait = next ? next.getTime() - Date.now() : pollMs;
    schedule(Math.min(pollMs, wait <= 0 && !claimedAny ? pollMs : wait));
  }

  function wake(): void {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    running = round()
      .catch((error: unknown) => {
        failedRounds++;
        const pause = backoff(failedRounds);
        logger.warn({ err: error, failedRounds }, `webhook dispatch round failed; next try in ${pause} ms`);
        schedule(pause);
        again = false; // the backoff decides when to look again
      })
      .finally(() => {
        running = undefined;
        // Woken after the round last looked (an attempt ended, a notification came, while it read
        // nextDueAt or as it returned with every slot taken): look again now. Left to the timer,
        // a freed slot waited up to pollMs (5 s) with deliveries due.
        if (again) wake();
      });
  }

  // Until it (re)connects, polling alone finds the deliveries: later, never lost.
  const relisten = () => {
    if (!stopping) setTimeout(() => void listen(), backoff(failedConnects)).unref();
  };
  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString: options.ownerUrl });
    client.on('notification', wake);
    client.on('error', (error) => {
      logger.warn({ err: error }, 'webhook listener connection lost; reconnecting, polling meanwhile');
      if (listener === client) listener = undefined;
      void client.end().catch(() => {});
      failedConnects++;
      relisten();
    });
    try {
      await client.connect();
      await client.query(`listen ${NOTIFY_CHANNEL}`);
    } catch (error) {
      failedConnects++;
      logger.warn(
        { err: error, failedConnects },
        `webhook listener could not connect; next try in ${backoff(failedConnects)} ms, polling meanwhile`,
      );
      await client.end().catch(() => {});
      relisten();
      return;
    }
    failedConnects = 0;
    if (stopping) await client.end();
    else listener = client;
    wake(); // whatever was notified while it was not listening
  }

  await listen();
  if (!listener) wake(); // listening wakes it; without a listener, polling starts now
  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
      await Promise.all(inFlight);
      await listener?.end().catch(() => {});
      listener = undefined;
    },
  };
}
