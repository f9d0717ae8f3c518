// The event feed: read-only; events are written by the services that make the changes.
import type { EventRow } from '../database/schema.js';
import * as events from '../queries/events.js';
import { findSubscription } from '../queries/subscriptions.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';
import { performDueCancellations } from './subscriptions.js';

export function listEvents(
  ctx: ServiceContext,
  actor: Actor,
  filter: events.EventFilter,
): Promise<Page<EventRow>> {
  return inTenant(ctx, actor, async (tx) => toPage(await events.listEvents(tx.db, filter), filter.limit));
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
): Promise<Page<EventRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [, page, exists, hasHistory] = await Promise.all([
      performDueCancellations(tx),
      events.listEvents(tx.db, { ...filter, resourceType: 'subscription', resourceId: subscriptionId }),
      findSubscription(tx.db, subscriptionId),
      events.hasEvents(tx.db, 'subscription', subscriptionId),
    ]);
    return exists || hasHistory ? toPage(page, filter.limit) : undefined;
  });
}
