// Recording usage in bulk: any number of events, sent in batches of up to 1,000 (the API's limit),
// one batch after another. Safe to call again with the same events after a failure or a crash:
// an event_id the API recorded before answers as a duplicate and is never counted twice.
import type { SubscriptionsClient } from './client.js';
import type { components } from './generated/openapi.js';
import { ProblemError } from './problems.js';

type UsageEventCreate = components['schemas']['UsageEventCreate'];
type BatchEntry = components['schemas']['UsageEventBatchResult']['data'][number];

export interface RecordUsageResult {
  /** Events recorded by this call (as the API answered each batch: see `duplicates`). */
  created: number;
  /**
   * Events whose event_id was recorded already (before, or earlier in this call). A batch the SDK
   * sent again after a lost answer counts the events its first attempt recorded here: the API
   * answers them as the duplicates they then are (each is still counted once).
   */
  duplicates: number;
  /** One entry per event given, in order; `index` is its position in `events`. */
  data: BatchEntry[];
}

/** The API's largest batch. */
export const MAX_USAGE_BATCH = 1000;
/** The API's largest batch body is 1 MB (1,048,576 bytes); batches stay under it, with room to spare. */
export const MAX_USAGE_BATCH_BYTES = 1_000_000;

const encoder = new TextEncoder();

/**
 * The events' batches: up to `batchSize` events each, and no more than MAX_USAGE_BATCH_BYTES of
 * JSON (events with large properties fill the API's 1 MB before its 1,000 events). An event too
 * large on its own goes alone, for the API to refuse (413).
 */
function batchesOf(events: readonly UsageEventCreate[], batchSize: number): Array<[number, number]> {
  const batches: Array<[number, number]> = [];
  let start = 0;
  let bytes = 0;
  events.forEach((event, i) => {
    const size = encoder.encode(JSON.stringify(event)).length + 1; // and its comma
    if (i > start && (i - start >= batchSize || bytes + size > MAX_USAGE_BATCH_BYTES)) {
      batches.push([start, i]);
      start = i;
      bytes = 0;
    }
    bytes += size;
  });
  if (start < events.length) batches.push([start, events.length]);
  return batches;
}

/**
 * A batch the API refused (a ProblemError, 422 for an event breaking a rule): its `errors` name
 * events by their index within the batch (`/events/2`), which starts at `batchStart` in the events
 * given (so that one is `events[batchStart + 2]`); `recorded` is what the batches before it
 * recorded. The batches after it were not sent.
 */
export class UsageBatchError extends ProblemError {
  override name = 'UsageBatchError';
  constructor(
    refused: ProblemError,
    /** The index in the events given of the refused batch's first event. */
    readonly batchStart: number,
    /** What the batches before it recorded. */
    readonly recorded: RecordUsageResult,
  ) {
    super(refused.response, refused.problem, refused.idempotencyKey);
  }
}

/**
 * Records the events, `batchSize` (at most 1,000) at a time, and fewer when they would make a body
 * over 1 MB. A batch the API refuses throws a UsageBatchError (a ProblemError) that says where
 * that batch starts and what the batches before it recorded; the rest are not sent.
 */
export async function recordUsage(
  api: SubscriptionsClient,
  events: readonly UsageEventCreate[],
  { batchSize = MAX_USAGE_BATCH }: { batchSize?: number } = {},
): Promise<RecordUsageResult> {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_USAGE_BATCH)
    throw new RangeError(`batchSize must be an integer from 1 to ${MAX_USAGE_BATCH}`);
  const result: RecordUsageResult = { created: 0, duplicates: 0, data: [] };
  for (const [start, end] of batchesOf(events, batchSize)) {
    // Its own key, known here too when openapi-fetch returns a refusal instead of throwing.
    const idempotencyKey = crypto.randomUUID();
    const { data, error, response } = await api
      .POST('/api/v1/usage-events/batch', {
        body: { events: events.slice(start, end) },
        headers: { 'Idempotency-Key': idempotencyKey },
      })
      .catch((error: unknown) => {
        throw error instanceof ProblemError ? new UsageBatchError(error, start, result) : error;
      });
    if (!data) {
      // With throwOnError: false openapi-fetch returns the problem (already read) instead of
      // throwing: the same UsageBatchError, saying where the refused batch starts.
      const refused =
        error instanceof ProblemError
          ? error
          : new ProblemError(
              response,
              typeof error === 'object' && error !== null ? error : undefined,
              idempotencyKey,
            );
      throw new UsageBatchError(refused, start, result);
    }
    result.created += data.created;
    result.duplicates += data.duplicates;
    for (const entry of data.data) result.data.push({ ...entry, index: start + entry.index });
  }
  return result;
}
