// @subscriptions-api/sdk: a typed client for the Subscriptions API (see README.md).
export {
  backoffMs,
  type ClientOptions,
  createClient,
  retryAfterMs,
  type SubscriptionsClient,
} from './client.js';
export type { components, operations, paths } from './generated/openapi.js';
export {
  type ItemOf,
  type ListPath,
  type Page,
  type PaginateOptions,
  pages,
  paginate,
} from './pagination.js';
export { type Problem, ProblemError } from './problems.js';
export {
  MAX_USAGE_BATCH,
  MAX_USAGE_BATCH_BYTES,
  type RecordUsageResult,
  recordUsage,
  UsageBatchError,
} from './usage.js';
export {
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  type VerifyOptions,
  type WebhookEvent,
  WebhookSignatureError,
  verifyWebhook,
} from './webhooks.js';
