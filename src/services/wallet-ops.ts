// Holds, captures and releases: the requests of an AI feature's hot path, one pair per model call,
// often many at once, on one customer's wallet or on many (docs/wallets.md, "Holds under load").
//
// Each is decided under its wallet's lock (services/wallets.ts, LockedWallet). While one of an API
// key's transactions of these requests is in flight, the key's next requests wait in the server;
// then they go together in the next one: the locks of their wallets, one read of the grants, one
// write, one commit for all of them, each decided in its order of arrival on the balances the
// ones before it left (a group commit). Each request still gets the answer it would get alone, and
// is answered only once the transaction has committed. One such transaction per key is in flight
// at a time (two made both slower: bench/results.md), and each takes one turn of the server's
// writes (http/write-gate.ts).
//
// A request with an Idempotency-Key has its key claimed in the group's transaction and its reply
// stored in it, as inTenant does for one request. Every request of a group that fails as a whole,
// or that spans several wallets one of which is on a test clock (its events occur in the clock's
// time), runs again in a transaction of its own.
import { isDatabaseUnavailable } from '../database/errors.js';
import { uuidV7 } from '../database/uuid-v7.js';
import type { BillableMetricRow, HoldRow } from '../database/schema.js';
import { findBillableMetricsByCode } from '../queries/billable-metrics.js';
import * as wallets from '../queries/wallets.js';
import { formatQuantity, parseTotal } from '../billing/usage-pricing.js';
import { insertEvents } from '../queries/events.js';
import * as idempotencyKeys from '../queries/idempotency-keys.js';
import {
  type Actor,
  IdempotencyStop,
  type IdempotentRequest,
  idempotencyStop,
  inTenant,
  type ServiceContext,
  type Tx,
} from './context.js';
import { LockedWallet, MAX_CREDITS } from './wallets.js';

const credits = (text: string) => parseTotal(text);
const text = (millionths: bigint) => formatQuantity(millionths);

export type HoldOutcome =
  | { kind: 'held'; hold: HoldRow }
  | { kind: 'missing' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> }
  | { kind: 'insufficient'; available: string; overdraft: boolean };

export type SettleOutcome =
  | { kind: 'settled'; hold: HoldRow }
  | { kind: 'missing' }
  | { kind: 'not-pending'; hold: HoldRow }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> }
  | { kind: 'insufficient'; available: string; overdraft: boolean; excess: string };

type Op =
  | { kind: 'hold'; credits: string; expires_in: number }
  | {
      kind: 'capture';
      holdId: string;
      credits: string;
      metric?: string | undefined;
      dimension_value?: string | null | undefined;
    }
  | { kind: 'release'; holdId: string };
type Outcome = HoldOutcome | SettleOutcome;

/** Reserves credits on a wallet: refused (insufficient) when fewer are available. */
export async function createHold(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  input: { credits: string; expires_in: number },
): Promise<HoldOutcome> {
  const outcome = (await queued(ctx, actor, walletId, { kind: 'hold', ...input })) as HoldOutcome;
  if (outcome.kind === 'held') rememberWallet(ctx, outcome.hold);
  return outcome;
}

/**
 * Captures `credits` of a pending hold: up to the hold from its credits, any excess from the
 * available balance (refused, changing nothing, when that is too low); the rest is released.
 */
export async function captureHold(
  ctx: ServiceContext,
  actor: Actor,
  holdId: string,
  input: { credits: string; metric?: string | undefined; dimension_value?: string | null | undefined },
): Promise<SettleOutcome> {
  const walletId = await walletOfHold(ctx, actor, holdId);
  if (!walletId) return { kind: 'missing' };
  return (await queued(ctx, actor, walletId, { kind: 'capture', holdId, ...input })) as SettleOutcome;
}

export async function releaseHold(ctx: ServiceContext, actor: Actor, holdId: string): Promise<SettleOutcome> {
  const walletId = await walletOfHold(ctx, actor, holdId);
  if (!walletId) return { kind: 'missing' };
  return (await queued(ctx, actor, walletId, { kind: 'release', holdId })) as SettleOutcome;
}

/**
 * The wallet of a hold (a hold never moves): remembered for holds made or seen lately, else read.
 * Remembered ids are only a hint: the transaction reads the hold again under the wallet's lock,
 * among that wallet's holds, with the request's own tenant scope.
 */
async function walletOfHold(ctx: ServiceContext, actor: Actor, holdId: string): Promise<string | undefined> {
  const known = holdWallets(ctx).get(holdId);
  if (known) return known;
  const { idempotency: _, ...reader } = actor;
  const hold = await inTenant(ctx, reader, (tx) => wallets.findHold(tx.db, holdId), { oneStatement: true });
  if (hold) rememberWallet(ctx, hold);
  return hold?.wallet_id;
}

/** How many holds' wallets a server remembers (the oldest are forgotten first). */
const REMEMBERED_HOLDS = 10_000;
const remembered = new WeakMap<ServiceContext, Map<string, string>>();
function holdWallets(ctx: ServiceContext): Map<string, string> {
  let map = remembered.get(ctx);
  if (!map) remembered.set(ctx, (map = new Map<string, string>()));
  return map;
}
function rememberWallet(ctx: ServiceContext, hold: Pick<HoldRow, 'id' | 'wallet_id'>): void {
  const map = holdWallets(ctx);
  map.set(hold.id, hold.wallet_id);
  if (map.size > REMEMBERED_HOLDS) map.delete(map.keys().next().value!);
}

interface Waiting {
  walletId: string;
  op: Op;
  actor: Actor;
  resolve: (outcome: Outcome) => void;
  reject: (error: unknown) => void;
}
interface Queue {
  running: boolean;
  waiting: Waiting[];
}
/** The most requests in one transaction. */
const GROUP_SIZE = 100;
const queues = new WeakMap<ServiceContext, Map<string, Queue>>();

function queued(ctx: ServiceContext, actor: Actor, walletId: string, op: Op): Promise<Outcome> {
  let byKey = queues.get(ctx);
  if (!byKey) queues.set(ctx, (byKey = new Map<string, Queue>()));
  // One key is one tenant and one scope: its requests can share a transaction.
  let queue = byKey.get(actor.keyId);
  if (!queue) byKey.set(actor.keyId, (queue = { running: false, waiting: [] }));
  const q = queue;
  const keys = byKey;
  return new Promise((resolve, reject) => {
    q.waiting.push({ walletId, op, actor, resolve, reject });
    next(ctx, keys, actor.keyId, q);
  });
}

/**
 * Starts the key's next transaction, unless one is in flight: the waiting requests in order,
 * except that two on the same hold, or with the same Idempotency-Key, never share one (the
 * second waits for the next, and sees what the first did).
 */
function next(ctx: ServiceContext, byKey: Map<string, Queue>, key: string, queue: Queue) {
  if (queue.running) return;
  if (queue.waiting.length === 0) {
    byKey.delete(key);
    return;
  }
  const group: Waiting[] = [];
  const later: Waiting[] = [];
  const holds = new Set<string>();
  const idempotencyKeys = new Set<string>();
  for (const waiting of queue.waiting) {
    const holdId = waiting.op.kind === 'hold' ? undefined : waiting.op.holdId;
    const key = waiting.actor.idempotency?.key;
    const fits =
      group.length === 0 ||
      (group.length < GROUP_SIZE &&
        (holdId === undefined || !holds.has(holdId)) &&
        (key === undefined || !idempotencyKeys.has(key)));
    if (fits) {
      group.push(waiting);
      if (holdId !== undefined) holds.add(holdId);
      if (key !== undefined) idempotencyKeys.add(key);
    } else later.push(waiting);
  }
  queue.waiting = later;
  queue.running = true;
  void runGroup(ctx, group).finally(() => {
    queue.running = false;
    next(ctx, byKey, key, queue);
  });
}

async function runGroup(ctx: ServiceContext, group: readonly Waiting[]): Promise<void> {
  const end = await ctx.writeTurn?.();
  try {
    if (group.length > 1) {
      try {
        // The requests' actors are the same but for the request id, kept with each one's events,
        // and the idempotency key, claimed and stored for each one.
        const { idempotency: _, ...actor } = group[0]!.actor;
        const outcomes = await inTenant(ctx, actor, (tx) =>
          applyOps(
            tx,
            actor,
            group.map((w) => ({
              walletId: w.walletId,
              op: w.op,
              requestId: w.actor.requestId ?? null,
              idempotency: w.actor.idempotency,
            })),
          ),
        );
        group.forEach((waiting, i) => {
          const outcome = outcomes[i]!;
          if (outcome instanceof IdempotencyStop) waiting.reject(outcome);
          else waiting.resolve(outcome);
        });
        return;
      } catch (error) {
        if (isDatabaseUnavailable(error)) {
          for (const waiting of group) waiting.reject(error);
          return;
        }
        // Rolled back as a whole: each one again below, in a transaction of its own.
      }
    }
    for (const waiting of group) {
      await inTenant(ctx, waiting.actor, async (tx) => {
        // Its idempotency key is claimed and stored by inTenant.
        const [outcome] = await applyOps(tx, waiting.actor, [{ walletId: waiting.walletId, op: waiting.op }]);
        return outcome as Outcome;
      }).then(waiting.resolve, waiting.reject);
    }
  } finally {
    end?.();
  }
}

/**
 * The requests' changes to their wallets, in one transaction: the wallets' locks (in the order of
 * their ids, so that two such transactions never wait for each other in a circle), their grants
 * and lapsed holds, the holds settled and their parts, and the metrics captures name, in one
 * round trip; then each request decided in order; then every write in one more.
 */
async function applyOps(
  tx: Tx,
  actor: Actor,
  ops: ReadonlyArray<{
    walletId: string;
    op: Op;
    requestId?: string | null;
    /** A request's key, claimed here (with the reads) and stored with its reply. */
    idempotency?: IdempotentRequest | undefined;
  }>,
): Promise<Array<Outcome | IdempotencyStop>> {
  const walletIds = [...new Set(ops.map((o) => o.walletId))].sort();
  const holdIds = ops.flatMap(({ op }) => (op.kind === 'hold' ? [] : [op.holdId]));
  const codes = [
    ...new Set(
      ops.flatMap(({ op }) => (op.kind === 'capture' && op.metric !== undefined ? [op.metric] : [])),
    ),
  ];
  const [claims, opened, holds, parts, metrics] = await Promise.all([
    Promise.all(
      ops.map((o) =>
        o.idempotency
          ? idempotencyKeys.claim(tx.db, actor.keyId, o.idempotency.key)
          : Promise.resolve(undefined),
      ),
    ),
    Promise.all(walletIds.map((id) => LockedWallet.open(tx, id, actor))),
    wallets.findHolds(tx.db, holdIds),
    wallets.partsOfHolds(tx.db, holdIds),
    findBillableMetricsByCode(tx.db, codes),
  ]);
  const lockedWallets = new Map<string, LockedWallet>();
  for (const locked of opened) if (locked) lockedWallets.set(locked.wallet.id, locked);
  // A transaction's events occur at one time: a wallet on a test clock lives in the clock's, so
  // it shares a transaction with no other wallet (the group runs again one request at a time).
  if (lockedWallets.size > 1 && opened.some((locked) => locked?.wallet.test_clock_id)) {
    throw new Error('a group of wallets on different clocks');
  }
  for (const [holdId, holdParts] of parts) {
    const walletId = holds.get(holdId)?.wallet_id;
    if (walletId) lockedWallets.get(walletId)?.knowParts(holdId, holdParts);
  }
  const byCode = new Map(metrics.map((m) => [m.code, m]));

  // Each request's outcome: at once, or once the write whose row completes it is done.
  const decided: Array<Promise<Outcome | IdempotencyStop>> = [];
  for (const [i, { walletId, op, requestId, idempotency }] of ops.entries()) {
    // A key that cannot run now (a replay, a key in use or reused) changes nothing.
    const stop = claims[i] && idempotency && idempotencyStop(claims[i], idempotency);
    if (stop) {
      decided.push(Promise.resolve(stop));
      continue;
    }
    const locked = lockedWallets.get(walletId);
    if (!locked) {
      decided.push(Promise.resolve({ kind: 'missing' }));
      continue;
    }
    if (op.kind === 'hold') decided.push(hold(tx, locked, op));
    else {
      // The sweep may have expired it since it was read: then as the sweep wrote it.
      const found = locked.swept.get(op.holdId) ?? holds.get(op.holdId);
      if (found?.wallet_id !== walletId) decided.push(Promise.resolve({ kind: 'missing' }));
      else if (found.status !== 'pending')
        decided.push(Promise.resolve({ kind: 'not-pending', hold: found }));
      else {
        const settlement =
          op.kind === 'capture' ? await capture(locked, found, op, byCode) : await release(locked, found);
        decided.push(
          settlement.kind === 'settle'
            ? wallets
                .settleHold(tx.db, found.id, settlement.values)
                .then((settled) => ({ kind: 'settled', hold: settled }))
            : Promise.resolve(settlement),
        );
      }
    }
    locked.endChanges(requestId);
  }
  // The holds, the holds settled, the grants and the ledger leave together (a hold before the
  // ledger entries that name it).
  const [outcomes] = await Promise.all([
    Promise.all(decided),
    Promise.all([...lockedWallets.values()].map((locked) => locked.save())),
  ]);
  // The replies of the requests with a key, stored with COMMIT (refusals are not).
  ops.forEach(({ idempotency }, i) => {
    const outcome = outcomes[i]!;
    if (!idempotency || outcome instanceof IdempotencyStop) return;
    const reply = idempotency.reply(outcome);
    if (!reply || reply.status >= 400) return;
    const record = {
      apiKeyId: actor.keyId,
      key: idempotency.key,
      fingerprint: idempotency.fingerprint,
      reply,
    };
    for (const query of insertEvents(tx.db, [], record)) tx.atCommit(query);
  });
  return outcomes;
}

/** Decides a hold; its write is sent at once (it leaves with the others: one write per turn). */
async function hold(
  tx: Tx,
  locked: LockedWallet,
  input: { credits: string; expires_in: number },
): Promise<HoldOutcome> {
  const amount = credits(input.credits);
  if (amount === 0n)
    return { kind: 'invalid', errors: [{ field: '/credits', message: 'must be more than 0' }] };
  if (locked.spendable < amount)
    return { kind: 'insufficient', available: text(locked.spendable), overdraft: locked.hasOverdraft };
  // A wallet holds less than 10^18 credits (numeric(24, 6), the API's Credits): a hold reserving
  // what is left of an overdraft on top of the grants' credits could pass it, where the ledger's
  // held_after (and the wallet's held) cannot follow.
  if (locked.held + amount > MAX_CREDITS)
    return {
      kind: 'invalid',
      errors: [
        {
          field: '/credits',
          message: `would take the wallet's held credits to 10^18 or more (held now: ${text(locked.held)})`,
        },
      ],
    };
  const parts = locked.reserve(amount)!;
  // Its id made here, so that the hold, the grants and the ledger leave in one round trip.
  const id = uuidV7();
  locked.record('hold', amount, { hold_id: id });
  const row = await wallets.insertHold(
    tx.db,
    {
      id,
      wallet_id: locked.wallet.id,
      credits: text(amount),
      expires_in: input.expires_in,
      at: locked.madeAt,
    },
    parts,
  );
  return { kind: 'held', hold: row };
}

/** A hold settled in memory (its parts and ledger entries), to be written with the wallet's changes. */
interface Settlement {
  kind: 'settle';
  values: Parameters<typeof wallets.settleHold>[2];
}

async function capture(
  locked: LockedWallet,
  hold: HoldRow,
  input: { credits: string; metric?: string | undefined; dimension_value?: string | null | undefined },
  metrics: ReadonlyMap<string, BillableMetricRow>,
): Promise<SettleOutcome | Settlement> {
  let usage: { billable_metric_id: string; dimension: string | null } | undefined;
  if (input.metric !== undefined) {
    const metric = metrics.get(input.metric);
    if (!metric)
      return {
        kind: 'invalid',
        errors: [{ field: '/metric', message: `no billable metric has the code ${input.metric}` }],
      };
    // As a plan's charge: a dimension value only for a metric grouped by a property.
    if (metric.group_by === null && input.dimension_value != null)
      return {
        kind: 'invalid',
        errors: [
          {
            field: '/dimension_value',
            message: `the metric ${metric.code} has no group_by, so no dimension values`,
          },
        ],
      };
    usage = { billable_metric_id: metric.id, dimension: input.dimension_value ?? null };
  } else if (input.dimension_value != null) {
    return { kind: 'invalid', errors: [{ field: '/dimension_value', message: 'needs metric' }] };
  }
  const amount = credits(input.credits);
  const held = credits(hold.credits);
  const excess = amount > held ? amount - held : 0n;
  if (excess > locked.spendable) {
    return {
      kind: 'insufficient',
      available: text(locked.spendable),
      overdraft: locked.hasOverdraft,
      excess: text(excess),
    };
  }
  // What the capture leaves of the hold goes back first, then the rest is consumed (and any
  // excess from available): each ledger entry's balances are those after it.
  const leftover = held > amount ? held - amount : 0n;
  if (leftover > 0n) {
    await locked.settleParts(hold, leftover, 0n);
    locked.record('release', leftover, { hold_id: hold.id });
  }
  await locked.settleParts(hold, 0n, held - leftover);
  if (excess > 0n) locked.consumeAvailable(excess);
  locked.record('capture', amount, { hold_id: hold.id });
  return { kind: 'settle', values: { status: 'captured', captured: text(amount), at: locked.now, usage } };
}

async function release(locked: LockedWallet, hold: HoldRow): Promise<Settlement> {
  await locked.settleParts(hold, credits(hold.credits), 0n);
  locked.record('release', credits(hold.credits), { hold_id: hold.id });
  return { kind: 'settle', values: { status: 'released', captured: null, at: locked.now } };
}
