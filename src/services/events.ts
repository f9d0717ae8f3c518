// The event feed: read-only; events are written by the services that make the changes.
import { ROLE_SCOPES } from '../auth/roles.js';
import type { Schemas } from '../contract.js';
import type { EventRow } from '../database/schema.js';
import * as events from '../queries/events.js';
import { findSubscription } from '../queries/subscriptions.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';
import { performDueCancellations } from './subscriptions.js';

/**
 * A page of the feed; on a first page (no position given), also the feed's horizon, read before
 * the page (so every event older than it is in what the page read): where an empty first page
 * leaves its reader.
 */
export type FeedPage = Page<EventRow> & { horizon?: string | undefined };

/**
 * Resources whose events show what their own reads refuse a key without a scope (keys8 #1): a
 * webhook endpoint's URL and settings (admin), an API key's name, role and prefix (keys).
 */
const GUARDED_RESOURCES: ReadonlyArray<readonly [resourceType: string, scope: Schemas['Scope']]> = [
  ['webhook_endpoint', 'admin'],
  ['api_key', 'keys'],
];

/** The resource types whose events this actor's key may not read; none for the system. */
export function hiddenResourceTypes(actor: Actor): string[] {
  if (!actor.role) return [];
  const scopes = ROLE_SCOPES[actor.role];
  return GUARDED_RESOURCES.filter(([, scope]) => !scopes.includes(scope)).map(([type]) => type);
}

export function listEvents(ctx: ServiceContext, actor: Actor, filter: events.EventFilter): Promise<FeedPage> {
  return inTenant(ctx, actor, async (tx) => {
    const [horizon, rows] = await Promise.all([
      filter.after ? undefined : events.feedHorizon(tx.db),
      events.listEvents(tx.db, { ...filter, hiddenResourceTypes: hiddenResourceTypes(actor) }),
    ]);
    return { ...toPage(rows, filter.limit), horizon };
  });
}

/**
 * A subscription's history; undefined when there never was such a subscription. Only events of
 * resource type subscription count: another resource's id (a user's, a plan's) is no subscription.
 */
export function listSubscriptionEvents(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  filter: events.EventFilter,
): Promise<FeedPage | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [, horizon, page, exists, hasHistory] = await Promise.all([
      performDueCancellations(tx),
      filter.after ? undefined : events.feedHorizon(tx.db),
      events.listEvents(tx.db, { ...filter, resourceType: 'subscription', resourceId: subscriptionId }),
      findSubscription(tx.db, subscriptionId),
      events.hasEvents(tx.db, 'subscription', subscriptionId),
    ]);
    return exists || hasHistory ? { ...toPage(page, filter.limit), horizon } : undefined;
  });
}
