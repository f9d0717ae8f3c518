// Generated from the contract (generated/openapi.yaml) by `make gen` (gen/idempotent-writes.ts): do not edit.
// The writes that accept an Idempotency-Key, as [method, a pattern of the URL path's end].
export const IDEMPOTENT_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
  ['POST', /\/api\/v1\/users$/], // createUser
  ['PATCH', /\/api\/v1\/users\/[^/]+$/], // updateUser
  ['DELETE', /\/api\/v1\/users\/[^/]+$/], // deleteUser
  ['POST', /\/api\/v1\/features$/], // createFeature
  ['PATCH', /\/api\/v1\/features\/[^/]+$/], // updateFeature
  ['DELETE', /\/api\/v1\/features\/[^/]+$/], // deleteFeature
  ['POST', /\/api\/v1\/subscriptions$/], // createSubscription
  ['PATCH', /\/api\/v1\/subscriptions\/[^/]+$/], // updateSubscription
  ['DELETE', /\/api\/v1\/subscriptions\/[^/]+$/], // deleteSubscription
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/cancel$/], // cancelSubscription
  ['DELETE', /\/api\/v1\/subscriptions\/[^/]+\/cancel$/], // withdrawSubscriptionCancellation
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/scheduled-change$/], // scheduleSubscriptionChange
  ['DELETE', /\/api\/v1\/subscriptions\/[^/]+\/scheduled-change$/], // cancelScheduledChange
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/discount$/], // applySubscriptionDiscount
  ['DELETE', /\/api\/v1\/subscriptions\/[^/]+\/discount$/], // removeSubscriptionDiscount
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/pause$/], // pauseSubscription
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/resume$/], // resumeSubscription
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/invoice-items$/], // createInvoiceItem
  ['PUT', /\/api\/v1\/subscriptions\/[^/]+\/features\/[^/]+$/], // linkSubscriptionFeature
  ['DELETE', /\/api\/v1\/subscriptions\/[^/]+\/features\/[^/]+$/], // unlinkSubscriptionFeature
  ['POST', /\/api\/v1\/plans$/], // createPlan
  ['PATCH', /\/api\/v1\/plans\/[^/]+$/], // updatePlan
  ['DELETE', /\/api\/v1\/plans\/[^/]+$/], // deletePlan
  ['POST', /\/api\/v1\/coupons$/], // createCoupon
  ['POST', /\/api\/v1\/tax-rates$/], // createTaxRate
  ['POST', /\/api\/v1\/tax-rates\/[^/]+\/supersede$/], // supersedeTaxRate
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/invoices$/], // createInvoice
  ['POST', /\/api\/v1\/invoices$/], // createOneOffInvoice
  ['POST', /\/api\/v1\/invoices\/[^/]+\/finalize$/], // finalizeInvoice
  ['POST', /\/api\/v1\/invoices\/[^/]+\/void$/], // voidInvoice
  ['POST', /\/api\/v1\/invoices\/[^/]+\/credit-notes$/], // createCreditNote
  ['POST', /\/api\/v1\/invoices\/[^/]+\/payments$/], // createPayment
  ['POST', /\/api\/v1\/test-clocks$/], // createTestClock
  ['POST', /\/api\/v1\/test-clocks\/[^/]+\/advance$/], // advanceTestClock
  ['PUT', /\/api\/v1\/billing-settings$/], // putBillingSettings
  ['POST', /\/api\/v1\/webhook-endpoints$/], // createWebhookEndpoint
  ['PATCH', /\/api\/v1\/webhook-endpoints\/[^/]+$/], // updateWebhookEndpoint
  ['DELETE', /\/api\/v1\/webhook-endpoints\/[^/]+$/], // deleteWebhookEndpoint
  ['POST', /\/api\/v1\/webhook-endpoints\/[^/]+\/rotate-secret$/], // rotateWebhookEndpointSecret
  ['POST', /\/api\/v1\/webhook-deliveries\/[^/]+\/retry$/], // retryWebhookDelivery
  ['DELETE', /\/api\/v1\/api-keys\/[^/]+$/], // revokeApiKey
  ['POST', /\/api\/v1\/analytics\/rebuild$/], // rebuildAnalytics
  ['POST', /\/api\/v1\/billable-metrics$/], // createBillableMetric
  ['PATCH', /\/api\/v1\/billable-metrics\/[^/]+$/], // updateBillableMetric
  ['DELETE', /\/api\/v1\/billable-metrics\/[^/]+$/], // deleteBillableMetric
  ['POST', /\/api\/v1\/wallets$/], // createWallet
  ['PATCH', /\/api\/v1\/wallets\/[^/]+$/], // updateWallet
  ['POST', /\/api\/v1\/wallets\/[^/]+\/grants$/], // createGrant
  ['POST', /\/api\/v1\/wallets\/[^/]+\/holds$/], // createHold
  ['POST', /\/api\/v1\/holds\/[^/]+\/capture$/], // captureHold
  ['POST', /\/api\/v1\/holds\/[^/]+\/release$/], // releaseHold
];

// The writes that are safe to send again without a key: idempotent by their body (x-retry-safe),
// DELETEs (deleting again changes nothing), and POSTs that write nothing (a preview, a quote).
export const RETRY_SAFE_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
  ['POST', /\/api\/v1\/subscriptions\/[^/]+\/preview-change$/], // previewSubscriptionChange
  ['POST', /\/api\/v1\/plans\/[^/]+\/quote$/], // quotePlan
  ['DELETE', /\/api\/v1\/coupons\/[^/]+$/], // deleteCoupon
  ['POST', /\/api\/v1\/usage-events$/], // createUsageEvent
  ['POST', /\/api\/v1\/usage-events\/batch$/], // createUsageEvents
];
