// `make gen` / `make check-gen`: what the code asks of the database, checked in so review sees it.
//   generated/database.ts  the tables as the migrations create them (kysely-codegen)
//   db/sql/<module>.sql    the SQL every query function compiles to, run once with placeholder
//                          values in a rolled-back transaction against the migrated schema
// Runs a throwaway embedded PostgreSQL. With --check, writes nothing and fails on any difference.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NoResultError, sql } from 'kysely';
import * as maintenance from '../analytics/maintenance.js';
import * as metrics from '../analytics/metrics.js';
import * as mrr from '../analytics/mrr.js';
import { COLUMNS as MRR_COLUMNS } from '../analytics/mrr-engine.js';
import * as mrrInput from '../analytics/mrr-input.js';
import * as mrrStore from '../analytics/mrr-store.js';
import * as usageMargin from '../analytics/usage-margin.js';
import { APP_ROLE, createDb, type Db } from '../database/connection.js';
import { databaseUrl, ensureDatabase, startEmbeddedPostgres } from '../database/embedded.js';
import { sqlState } from '../database/errors.js';
import { migrateToLatest } from '../database/migrator.js';
import * as apiKeys from '../queries/api-keys.js';
import * as events from '../queries/events.js';
import * as features from '../queries/features.js';
import * as idempotencyKeys from '../queries/idempotency-keys.js';
import * as coupons from '../queries/coupons.js';
import * as creditNotes from '../queries/credit-notes.js';
import * as customerBalance from '../queries/customer-balance.js';
import * as refunds from '../queries/refunds.js';
import * as invoiceItems from '../queries/invoice-items.js';
import * as invoices from '../queries/invoices.js';
import * as plans from '../queries/plans.js';
import * as rateLimits from '../queries/rate-limits.js';
import * as subscriptions from '../queries/subscriptions.js';
import * as taxRates from '../queries/tax-rates.js';
import * as tenants from '../queries/tenants.js';
import * as users from '../queries/users.js';
import * as billingSettings from '../queries/billing-settings.js';
import * as dueWork from '../queries/due-work.js';
import * as payments from '../queries/payments.js';
import * as testClocks from '../queries/test-clocks.js';
import * as webhooks from '../queries/webhooks.js';
import * as billableMetrics from '../queries/billable-metrics.js';
import * as usage from '../queries/usage.js';
import * as wallets from '../queries/wallets.js';
import { runMain, StartupError } from '../startup.js';

const check = process.argv.includes('--check');
const SQL_DIR = 'db/sql';
const TYPES_FILE = 'generated/database.ts';

// Placeholder rows, created before the calls: the calls find, link and reference them.
const TENANT = '01900000-0000-7000-8000-000000000001';
const USER = '01900000-0000-7000-8000-000000000002';
const FEATURE = '01900000-0000-7000-8000-000000000003';
const SUBSCRIPTION = '01900000-0000-7000-8000-000000000004';
const KEY = '01900000-0000-7000-8000-000000000005';
/** A tenant not created yet: insertTenant runs in a transaction that names the new tenant. */
const NEW_TENANT = '01900000-0000-7000-8000-000000000006';
const TENANT_OF: Record<string, string> = { 'tenants.insertTenant': NEW_TENANT };
const PLAN = '01900000-0000-7000-8000-000000000007';
const PLAN_VERSION = '01900000-0000-7000-8000-000000000008';
const TAX_RATE = '01900000-0000-7000-8000-000000000009';
const INVOICE = '01900000-0000-7000-8000-00000000000a';
const CLOCK = '01900000-0000-7000-8000-00000000000b';
const PAYMENT = '01900000-0000-7000-8000-00000000000c';
const WEBHOOK_ENDPOINT = '01900000-0000-7000-8000-00000000000d';
const WEBHOOK_DELIVERY = '01900000-0000-7000-8000-00000000000e';
const BILLABLE_METRIC = '01900000-0000-7000-8000-00000000000f';
const USAGE_EVENT = '01900000-0000-7000-8000-000000000010';
const WALLET = '01900000-0000-7000-8000-000000000011';
const GRANT = '01900000-0000-7000-8000-000000000012';
const HOLD = '01900000-0000-7000-8000-000000000013';
const COUPON = '01900000-0000-7000-8000-000000000016';
const CREDIT_NOTE = '01900000-0000-7000-8000-000000000014';
const REFUND = '01900000-0000-7000-8000-000000000015';

type Call = (db: Db) => Promise<unknown>;

/** Every exported query function, with placeholder arguments; a new one must be added here. */
const CALLS: Record<string, { module: Record<string, unknown>; calls: Record<string, Call> }> = {
  'api-keys': {
    module: apiKeys,
    calls: {
      listApiKeys: (db) => apiKeys.listApiKeys(db),
      insertApiKey: (db) =>
        apiKeys.insertApiKey(db, {
          name: 'k',
          prefix: 'sk_00000000',
          key_hash: Buffer.alloc(32),
          role: 'viewer',
          expires_at: null,
        }),
      revokeApiKey: (db) => apiKeys.revokeApiKey(db, KEY),
      lockPermanentAdminKeys: (db) => apiKeys.lockPermanentAdminKeys(db),
      authenticateApiKey: (db) => apiKeys.authenticateApiKey(db, 'sk_00000000', Buffer.alloc(32)),
    },
  },
  events: {
    module: events,
    calls: {
      // With an idempotency key's record, in one statement.
      insertEvents: (db) =>
        Promise.all(
          events
            .insertEvents(
              db,
              [
                {
                  type: 'user.created',
                  resource_type: 'user',
                  resource_id: USER,
                  actor: KEY,
                  request_id: 'r',
                  data: {},
                },
              ],
              {
                apiKeyId: KEY,
                key: 'retry-1',
                fingerprint: 'f',
                reply: { status: 201, headers: {}, body: '{}' },
              },
            )
            .map((query) => db.executeQuery(query)),
        ),
      listEvents: (db) =>
        events.listEvents(db, {
          limit: 20,
          after: { xid: '1', seq: '1' },
          types: ['user.created', 'user.updated'],
          resourceType: 'user',
          resourceId: USER,
          occurredFrom: '2026-01-01T00:00:00Z',
          occurredBefore: '2027-01-01T00:00:00Z',
        }),
      feedHorizon: (db) => events.feedHorizon(db),
      exemptFromFeedHorizon: (db) => events.exemptFromFeedHorizon(db, db, 'rebuild'),
      hasEvents: (db) => events.hasEvents(db, 'user', USER),
      pausedSpans: (db) => events.pausedSpans(db, USER),
      importedPeriodPrice: (db) => events.importedPeriodPrice(db, USER, '2026-02-01'),
      canceledWhileTrialing: (db) => events.canceledWhileTrialing(db, USER),
    },
  },
  'idempotency-keys': {
    module: idempotencyKeys,
    calls: {
      claim: (db) => idempotencyKeys.claim(db, KEY, 'retry-1'),
      // The same statement, as withTenant sends it ahead of the work.
      claimStatement: (db) => db.executeQuery(idempotencyKeys.claimStatement(db, KEY, 'retry-2').query),
      purgeExpired: (db) => idempotencyKeys.purgeExpired(db),
    },
  },
  features: {
    module: features,
    calls: {
      listFeatures: (db) => features.listFeatures(db, { limit: 20, after: FEATURE, name: 'pro' }),
      findFeature: (db) => features.findFeature(db, FEATURE),
      lockFeature: (db) => features.lockFeature(db, FEATURE),
      insertFeature: (db) => features.insertFeature(db, { name: 'new', description: null }),
      updateFeature: (db) => features.updateFeature(db, FEATURE, { name: 'renamed', description: 'd' }),
      deleteFeature: (db) => features.deleteFeature(db, FEATURE),
      unlinkFromCanceledSubscriptions: (db) => features.unlinkFromCanceledSubscriptions(db, FEATURE),
    },
  },
  invoices: {
    module: invoices,
    calls: {
      listInvoices: (db) =>
        invoices.listInvoices(db, {
          limit: 20,
          after: INVOICE,
          subscriptionId: SUBSCRIPTION,
          userId: USER,
          statuses: ['open', 'paid'],
          periodOn: '2026-01-15',
          number: 7,
        }),
      findInvoice: (db) => invoices.findInvoice(db, INVOICE),
      lockInvoice: (db) => invoices.lockInvoice(db, INVOICE),
      discountUsedBy: (db) => invoices.discountUsedBy(db, INVOICE),
      issuedInvoicesMeeting: (db) =>
        invoices.issuedInvoicesMeeting(db, SUBSCRIPTION, '2026-01-01', '2026-02-01'),
      hasAnyInvoice: (db) => invoices.hasAnyInvoice(db, SUBSCRIPTION),
      latestInvoicedPeriod: (db) => invoices.latestInvoicedPeriod(db, SUBSCRIPTION),
      findInvoiceForPeriod: (db) =>
        invoices.findInvoiceForPeriod(db, SUBSCRIPTION, { start: '2026-01-01', end: '2026-02-01' }),
      overlappingPeriodInvoice: (db) =>
        invoices.overlappingPeriodInvoice(db, SUBSCRIPTION, { start: '2026-01-10', end: '2026-02-10' }),
      owedInvoicesOf: (db) => invoices.owedInvoicesOf(db, SUBSCRIPTION),
      hasFailingInvoice: (db) => invoices.hasFailingInvoice(db, SUBSCRIPTION),
      hasFailingInvoiceInDunning: (db) => invoices.hasFailingInvoice(db, SUBSCRIPTION, true),
      stopRetries: (db) => invoices.stopRetries(db, SUBSCRIPTION),
      resumeCollection: (db) => invoices.resumeCollection(db, SUBSCRIPTION, new Date('2026-02-01T00:00:00Z')),
      insertInvoice: (db) =>
        invoices.insertInvoice(db, {
          subscription_id: SUBSCRIPTION,
          user_id: USER,
          period_start: '2026-02-01',
          period_end: '2026-03-01',
          invoice_date: '2026-02-01',
          region: 'DE',
          lines: [],
          subtotal: '9.99',
          taxes: [],
          tax_total: '0.00',
          total: '9.99',
        }),
      openWithNextNumber: (db) => invoices.openWithNextNumber(db, INVOICE, { finalized_at: new Date(0) }),
      updateInvoice: (db) => invoices.updateInvoice(db, INVOICE, { status: 'void', voided_at: new Date(0) }),
      retaxDraft: (db) => invoices.retaxDraft(db, INVOICE, { taxes: '[]', tax_total: '0.00', total: '9.99' }),
      taxReport: (db) => invoices.taxReport(db, '2026-01-01', '2027-01-01'),
    },
  },
  'credit-notes': {
    module: creditNotes,
    calls: {
      listCreditNotes: (db) => creditNotes.listCreditNotes(db, INVOICE),
      nextCreditNoteNumber: (db) => creditNotes.nextCreditNoteNumber(db),
      leftToGiveBack: (db) => creditNotes.leftToGiveBack(db, SUBSCRIPTION),
      leftForEndingCredit: (db) => creditNotes.leftForEndingCredit(db, SUBSCRIPTION),
      insertCreditNote: (db) =>
        creditNotes.insertCreditNote(db, {
          number: 1,
          invoice_id: INVOICE,
          subscription_id: SUBSCRIPTION,
          user_id: USER,
          reason: 'Outage',
          lines: [],
          subtotal: '1.00',
          taxes: [],
          tax_total: '0.00',
          total: '1.00',
          refund_to: 'balance',
          refund_amount: '0.00',
          credit_amount: '1.00',
          issued_at: new Date(0),
        }),
    },
  },
  'customer-balance': {
    module: customerBalance,
    calls: {
      lockBalance: (db) => customerBalance.lockBalance(db, USER),
      addBalanceTransaction: (db) =>
        customerBalance.addBalanceTransaction(db, {
          user_id: USER,
          type: 'credit_note',
          amount: '1.00',
          invoice_id: INVOICE,
          credit_note_id: CREDIT_NOTE,
          created_at: new Date(0),
        }),
      listBalanceTransactions: (db) =>
        customerBalance.listBalanceTransactions(db, { userId: USER, limit: 20, after: CREDIT_NOTE }),
      endingCreditOfInvoice: (db) =>
        customerBalance.endingCreditOfInvoice(db, SUBSCRIPTION, {
          id: INVOICE,
          period_start: '2026-01-01',
          period_end: '2026-02-01',
        }),
    },
  },
  refunds: {
    module: refunds,
    calls: {
      listRefunds: (db) => refunds.listRefunds(db, { invoiceId: INVOICE, limit: 20, after: REFUND }),
      findRefund: (db) => refunds.findRefund(db, REFUND),
      lockRefund: (db) => refunds.lockRefund(db, REFUND),
      refundedOfInvoice: (db) => refunds.refundedOfInvoice(db, INVOICE),
      insertRefund: (db) =>
        refunds.insertRefund(db, {
          credit_note_id: CREDIT_NOTE,
          invoice_id: INVOICE,
          payment_id: PAYMENT,
          subscription_id: SUBSCRIPTION,
          user_id: USER,
          amount: '1.00',
          rail: 'card',
          payment_method: 'pm_card_visa',
          submit_after: new Date(0),
        }),
      // No such refund (it needs a payment and a credit note): the statement runs, updating nothing.
      updateRefund: (db) =>
        refunds.updateRefund(db, REFUND, { status: 'succeeded', settled_at: new Date(0) }).catch((error) => {
          if (!(error instanceof NoResultError)) throw error;
        }),
    },
  },
  'invoice-items': {
    module: invoiceItems,
    calls: {
      insertInvoiceItems: (db) =>
        invoiceItems.insertInvoiceItems(db, [
          {
            subscription_id: SUBSCRIPTION,
            kind: 'proration_credit',
            description: 'Unused time',
            amount: '-4.50',
            period_start: '2026-01-16',
            period_end: '2026-02-01',
          },
        ]),
      pendingInvoiceItems: (db) => invoiceItems.pendingInvoiceItems(db, SUBSCRIPTION),
      unbillInvoiceItems: (db) => invoiceItems.unbillInvoiceItems(db, INVOICE),
      hasProrationsIn: (db) =>
        invoiceItems.hasProrationsIn(db, SUBSCRIPTION, { start: '2026-01-01', end: '2026-02-01' }),
      proratedBeforeVoid: (db) =>
        invoiceItems.proratedBeforeVoid(
          db,
          SUBSCRIPTION,
          { start: '2026-01-01', end: '2026-02-01' },
          INVOICE,
        ),
      prorationItemsBilledBy: (db) =>
        invoiceItems.prorationItemsBilledBy(db, INVOICE, { start: '2026-01-01', end: '2026-02-01' }),
      prorationItemsIn: (db) =>
        invoiceItems.prorationItemsIn(db, SUBSCRIPTION, { start: '2026-01-01', end: '2026-02-01' }),
      creditsGivenIn: (db) =>
        invoiceItems.creditsGivenIn(
          db,
          SUBSCRIPTION,
          { start: '2026-01-01', end: '2026-02-01' },
          INVOICE,
          ', carried forward',
        ),
      billInvoiceItems: (db) => invoiceItems.billInvoiceItems(db, [SUBSCRIPTION], INVOICE),
      reducePendingItem: (db) => invoiceItems.reducePendingItem(db, SUBSCRIPTION, '-1.00'),
      updatePendingItem: (db) =>
        invoiceItems.updatePendingItem(db, SUBSCRIPTION, {
          amount: '1.00',
          period_end: '2026-01-15',
          description: 'Remaining time',
        }),
      deletePendingItem: (db) => invoiceItems.deletePendingItem(db, SUBSCRIPTION),
      settleInvoiceItems: (db) =>
        invoiceItems.settleInvoiceItems(db, [SUBSCRIPTION], '01900000-0000-7000-8000-000000000017'),
      listInvoiceItems: (db) =>
        invoiceItems.listInvoiceItems(db, {
          subscriptionId: SUBSCRIPTION,
          limit: 20,
          after: USER,
          pending: true,
        }),
    },
  },
  plans: {
    module: plans,
    calls: {
      listPlans: (db) => plans.listPlans(db, { limit: 20, after: PLAN, code: 'pro', archived: false }),
      planVersions: (db) => plans.planVersions(db, [PLAN]),
      findPlan: (db) => plans.findPlan(db, PLAN),
      lockPlan: (db) => plans.lockPlan(db, PLAN),
      findPlanWithPrice: (db) => plans.findPlanWithPrice(db, PLAN),
      findPlanVersion: (db) => plans.findPlanVersion(db, PLAN_VERSION),
      insertPlan: (db) =>
        plans.insertPlan(db, {
          code: 'new',
          name: 'New',
          interval: 'year',
          interval_count: 1,
          trial_days: null,
          usage_charges: [],
        }),
      insertPlanVersion: (db) =>
        plans.insertPlanVersion(db, PLAN, 2, { price_model: 'per_unit', amount: '2.50', tiers: null }),
      updatePlan: (db) => plans.updatePlan(db, PLAN, { name: 'Renamed', current_version: 1, archived: true }),
      deletePlan: (db) => plans.deletePlan(db, PLAN),
      usageChargesOf: (db) => plans.usageChargesOf(db, [PLAN]),
      lockUsageChargesOf: (db) => plans.lockUsageChargesOf(db, PLAN),
      usageChargesOfCustomers: (db) => plans.usageChargesOfCustomers(db, [USER]),
    },
  },
  coupons: {
    module: coupons,
    calls: {
      listCoupons: (db) => coupons.listCoupons(db, { limit: 20, after: COUPON }),
      findCoupon: (db) => coupons.findCoupon(db, COUPON),
      lockCoupon: (db) => coupons.lockCoupon(db, COUPON),
      insertCoupon: (db) =>
        coupons.insertCoupon(db, {
          name: 'Launch',
          percent_off: '25',
          amount_off: null,
          duration: 'repeating',
          duration_in_months: 3,
          max_redemptions: null,
          redeem_by: null,
          plan_ids: [PLAN],
        }),
      countRedemption: (db) => coupons.countRedemption(db, COUPON),
      uncountRedemption: (db) => coupons.uncountRedemption(db, COUPON),
      markCouponDeleted: (db) => coupons.markCouponDeleted(db, COUPON, new Date('2026-01-01T00:00:00Z')),
      existingPlanIds: (db) => coupons.existingPlanIds(db, [PLAN]),
      couponLimitedTo: (db) => coupons.couponLimitedTo(db, PLAN),
    },
  },
  'tax-rates': {
    module: taxRates,
    calls: {
      listTaxRates: (db) =>
        taxRates.listTaxRates(db, {
          limit: 20,
          after: TAX_RATE,
          code: 'VAT',
          region: 'DE',
          on: '2026-01-01',
        }),
      findTaxRate: (db) => taxRates.findTaxRate(db, TAX_RATE),
      lockTaxRate: (db) => taxRates.lockTaxRate(db, TAX_RATE),
      findSuccessor: (db) =>
        taxRates.findSuccessor(db, { code: 'VAT', region: 'DE', effective_until: '2027-01-01' }),
      insertTaxRate: (db) =>
        taxRates.insertTaxRate(db, {
          code: 'GST',
          name: 'GST',
          percentage: '10',
          region: 'AU',
          effective_from: '2026-01-01',
        }),
      closeTaxRate: (db) => taxRates.closeTaxRate(db, TAX_RATE, '2027-01-01'),
      ratesInForce: (db) => taxRates.ratesInForce(db, 'DE-BY', '2026-06-01'),
    },
  },
  'billable-metrics': {
    module: billableMetrics,
    calls: {
      listBillableMetrics: (db) =>
        billableMetrics.listBillableMetrics(db, {
          limit: 20,
          after: BILLABLE_METRIC,
          code: 'calls',
          archived: false,
        }),
      findBillableMetric: (db) => billableMetrics.findBillableMetric(db, BILLABLE_METRIC),
      findBillableMetricsByCode: (db) => billableMetrics.findBillableMetricsByCode(db, ['calls']),
      shareBillableMetricsByCode: (db) => billableMetrics.shareBillableMetricsByCode(db, ['calls']),
      lockBillableMetric: (db) => billableMetrics.lockBillableMetric(db, BILLABLE_METRIC),
      insertBillableMetric: (db) =>
        billableMetrics.insertBillableMetric(db, {
          code: 'tokens',
          name: 'Tokens',
          aggregation: 'sum',
          field: 'tokens',
          group_by: 'model',
          filters: { region: ['eu'] },
        }),
      updateBillableMetric: (db) =>
        billableMetrics.updateBillableMetric(db, BILLABLE_METRIC, { name: 'Calls', archived: true }),
      billableMetricInUse: (db) => billableMetrics.billableMetricInUse(db, BILLABLE_METRIC),
      noteChargedMetrics: (db) => billableMetrics.noteChargedMetrics(db, [BILLABLE_METRIC]),
      deleteBillableMetric: (db) => billableMetrics.deleteBillableMetric(db, BILLABLE_METRIC),
    },
  },
  usage: {
    module: usage,
    calls: {
      insertNewEvents: (db) =>
        usage.insertNewEvents(db, [
          {
            event_id: 'e-1',
            user_id: USER,
            subscription_id: SUBSCRIPTION,
            billable_metric_id: BILLABLE_METRIC,
            timestamp: new Date('2026-01-02T00:00:00Z'),
            properties: '{}',
            cost: null,
            value: null,
            dimension: null,
            counted: true,
            period_start: '2026-01-01',
          },
        ]),
      findEventsByEventId: (db) => usage.findEventsByEventId(db, ['e-1']),
      findEvent: (db) => usage.findEvent(db, USAGE_EVENT),
      listEvents: (db) =>
        usage.listEvents(db, {
          limit: 20,
          after: USAGE_EVENT,
          userId: USER,
          subscriptionId: SUBSCRIPTION,
          billableMetricId: BILLABLE_METRIC,
          eventId: 'e-1',
          from: new Date('2026-01-01T00:00:00Z'),
          to: new Date('2026-02-01T00:00:00Z'),
        }),
      insertUniqueValues: (db) =>
        usage.insertUniqueValues(db, [
          {
            ...{
              subscription_id: SUBSCRIPTION,
              billable_metric_id: BILLABLE_METRIC,
              period_start: '2026-01-01',
              dimension: null,
            },
            value: 'a',
          },
        ]),
      addToTotals: (db) =>
        usage.addToTotals(db, [
          {
            ...{
              subscription_id: SUBSCRIPTION,
              billable_metric_id: BILLABLE_METRIC,
              period_start: '2026-01-01',
              dimension: null,
            },
            events: 1,
            total: '1',
            max_value: null,
            latest_value: null,
            latest_at: null,
            latest_event_id: null,
            unique_values: 0,
            cost: '0.0250',
          },
        ]),
      periodTotals: (db) => usage.periodTotals(db, SUBSCRIPTION, '2026-01-01'),
      billedUsageLines: (db) => usage.billedUsageLines(db, SUBSCRIPTION, '2026-01-01'),
      openTotalsOfPlan: (db) => usage.openTotalsOfPlan(db, PLAN, [BILLABLE_METRIC]),
      openTotalsOfSubscription: (db) => usage.openTotalsOfSubscription(db, SUBSCRIPTION, [BILLABLE_METRIC]),
      hasCountedUsage: (db) => usage.hasCountedUsage(db, SUBSCRIPTION),
      latestCountedUsageAfter: (db) =>
        usage.latestCountedUsageAfter(db, { id: SUBSCRIPTION, user_id: USER }, '2026-01-15', '2026-01-01'),
      firstInvoicedPeriods: (db) => usage.firstInvoicedPeriods(db, [SUBSCRIPTION]),
      // No SQL: the key order the two writers above sort by.
      totalKeyText: () =>
        Promise.resolve(
          usage.totalKeyText({
            subscription_id: SUBSCRIPTION,
            billable_metric_id: BILLABLE_METRIC,
            period_start: '2026-01-01',
            dimension: null,
          }),
        ),
    },
  },
  wallets: {
    module: wallets,
    calls: {
      insertWallet: (db) =>
        wallets.insertWallet(db, {
          user_id: USER,
          name: 'Credits',
          rate: '100',
          low_balance_threshold: '50',
          overdraft_limit: '0',
          pays_usage: true,
          blocks_usage: false,
          test_clock_id: CLOCK,
        }),
      updateWallet: (db) =>
        wallets.updateWallet(db, WALLET, {
          name: 'Credits',
          low_balance_threshold: null,
          overdraft_limit: '0',
          pays_usage: false,
          blocks_usage: false,
        }),
      usageWalletsOf: (db) => wallets.usageWalletsOf(db, [USER]),
      lockUsageWallets: (db) => wallets.lockUsageWallets(db, USER, null),
      findWallet: (db) => wallets.findWallet(db, WALLET),
      lockWallet: (db) => wallets.lockWallet(db, WALLET),
      listWallets: (db) => wallets.listWallets(db, { limit: 20, after: WALLET, userId: USER }),
      balances: (db) => wallets.balances(db, [WALLET], new Date('2026-01-01T00:00:00Z')),
      insertGrant: (db) =>
        wallets.insertGrant(db, {
          wallet_id: WALLET,
          kind: 'free',
          credits: '10',
          priority: 1,
          expires_at: null,
        }),
      liveGrants: (db) => wallets.liveGrants(db, WALLET),
      findGrantOfInvoice: (db) => wallets.findGrantOfInvoice(db, INVOICE),
      findGrant: (db) => wallets.findGrant(db, GRANT, new Date('2026-01-01T00:00:00Z')),
      findWalletOfGrant: (db) => wallets.findWalletOfGrant(db, GRANT),
      pendingCredits: (db) => wallets.pendingCredits(db, WALLET, new Date('2026-01-01T00:00:00Z')),
      listGrants: (db) =>
        wallets.listGrants(db, WALLET, new Date('2026-01-01T00:00:00Z'), { limit: 20, after: GRANT }),
      settleGrant: (db) => wallets.settleGrant(db, GRANT, { available_at: new Date('2026-01-01T00:00:00Z') }),
      insertHold: (db) =>
        wallets.insertHold(db, { id: HOLD, wallet_id: WALLET, credits: '1', expires_in: 300 }, [
          { grant_id: GRANT, credits: '1' },
        ]),
      findHold: (db) => wallets.findHold(db, HOLD),
      holdParts: (db) => wallets.holdParts(db, HOLD),
      resizeOverdraft: (db) => wallets.resizeOverdraft(db, GRANT, '100'),
      findHolds: (db) => wallets.findHolds(db, [HOLD]),
      partsOfHolds: (db) => wallets.partsOfHolds(db, [HOLD]),
      lapsedHolds: (db) => wallets.lapsedHolds(db, WALLET, new Date('2026-01-01T00:00:00Z')),
      settleHold: (db) =>
        wallets.settleHold(db, HOLD, {
          status: 'released',
          captured: null,
          at: new Date('2026-01-01T00:00:00Z'),
        }),
      saveChanges: (db) =>
        wallets.saveChanges(
          db,
          [{ id: GRANT, remaining: '5', reserved: '1', expired_at: null }],
          [
            {
              wallet_id: WALLET,
              type: 'grant',
              credits: '10',
              available_after: '10',
              held_after: '0',
              grant_id: GRANT,
              hold_id: null,
              invoice_id: null,
              api_key_id: KEY,
            },
          ],
          new Date('2026-01-01T00:00:00Z'),
        ),
      listLedger: (db) => wallets.listLedger(db, WALLET, { limit: 20, after: WALLET }),
      walletsWithExpiryDue: (db) => wallets.walletsWithExpiryDue(db, new Date('2026-01-01T00:00:00Z'), 100),
    },
  },
  'rate-limits': {
    module: rateLimits,
    calls: {
      addHits: (db) => rateLimits.addHits(db, KEY, [{ key: KEY, windowStart: new Date(0), hits: 1 }]),
      purgeHits: (db) => rateLimits.purgeHits(db, new Date(0)),
    },
  },
  subscriptions: {
    module: subscriptions,
    calls: {
      listSubscriptions: (db) =>
        subscriptions.listSubscriptions(db, {
          limit: 20,
          after: SUBSCRIPTION,
          userId: USER,
          planId: PLAN,
          statuses: ['active', 'trialing'],
          startDateGte: '2026-01-01',
          startDateLte: '2026-12-31',
        }),
      findSubscription: (db) => subscriptions.findSubscription(db, SUBSCRIPTION),
      lockSubscription: (db) => subscriptions.lockSubscription(db, SUBSCRIPTION),
      shareLockSubscriptionsOf: (db) => subscriptions.shareLockSubscriptionsOf(db, [USER]),
      performDueCancellations: (db) => subscriptions.performDueCancellations(db),
      planInUse: (db) => subscriptions.planInUse(db, PLAN),
      insertSubscription: (db) =>
        subscriptions.insertSubscription(db, {
          user_id: USER,
          status: 'active',
          plan_cost: '9.99',
          billing_interval: 'month',
          start_date: '2026-01-01',
          end_date: null,
        }),
      updateSubscription: (db) =>
        subscriptions.updateSubscription(db, SUBSCRIPTION, { status: 'canceled', plan_cost: '1.00' }),
      deleteSubscription: (db) => subscriptions.deleteSubscription(db, SUBSCRIPTION),
      featuresOfSubscriptions: (db) => subscriptions.featuresOfSubscriptions(db, [SUBSCRIPTION]),
      // Twice: the first links, the second finds the link made.
      linkFeature: async (db) => {
        await subscriptions.linkFeature(db, SUBSCRIPTION, FEATURE);
        await subscriptions.linkFeature(db, SUBSCRIPTION, FEATURE);
      },
      unlinkFeature: (db) => subscriptions.unlinkFeature(db, SUBSCRIPTION, FEATURE),
      unlinkAllFeatures: (db) => subscriptions.unlinkAllFeatures(db, SUBSCRIPTION),
    },
  },
  'billing-settings': {
    module: billingSettings,
    calls: {
      billingSettings: (db) => billingSettings.billingSettings(db),
      lockBillingSettings: (db) => billingSettings.lockBillingSettings(db),
      // After the row exists (the first read makes it).
      updateBillingSettings: async (db) => {
        await billingSettings.billingSettings(db);
        await billingSettings.updateBillingSettings(db, {
          dunning_retry_days: [1, 3],
          dunning_final_action: 'cancel',
        });
      },
    },
  },
  'due-work': {
    module: dueWork,
    calls: {
      findDueWork: async (db) => {
        await dueWork.findDueWork(db, {}, 10);
        await dueWork.findDueWork(db, { tenantId: TENANT }, 10);
        await dueWork.findDueWork(db, { tenantId: TENANT, clockId: CLOCK }, 10);
      },
    },
  },
  payments: {
    module: payments,
    calls: {
      listPayments: (db) =>
        payments.listPayments(db, {
          limit: 20,
          after: PAYMENT,
          invoiceId: INVOICE,
          subscriptionId: SUBSCRIPTION,
          statuses: ['pending'],
        }),
      findPayment: (db) => payments.findPayment(db, PAYMENT),
      lockPayment: (db) => payments.lockPayment(db, PAYMENT),
      countPayments: (db) => payments.countPayments(db, INVOICE),
      findPaymentInFlight: (db) => payments.findPaymentInFlight(db, INVOICE),
      findSucceededPayment: (db) => payments.findSucceededPayment(db, INVOICE),
      insertPayment: (db) =>
        payments.insertPayment(db, {
          invoice_id: INVOICE,
          subscription_id: SUBSCRIPTION,
          amount: '9.99',
          rail: 'card',
          payment_method: 'pm_card_visa',
          initiated_by: 'api',
          attempt: 1,
          submit_after: new Date(0),
        }),
      updatePayment: async (db) => {
        const made = await payments.insertPayment(db, {
          invoice_id: INVOICE,
          subscription_id: SUBSCRIPTION,
          amount: '9.99',
          rail: 'card',
          payment_method: 'pm_card_visa',
          initiated_by: 'api',
          attempt: 1,
          submit_after: new Date(0),
        });
        await payments.updatePayment(db, made!.id, { status: 'processing', settles_at: new Date(0) });
      },
    },
  },
  'test-clocks': {
    module: testClocks,
    calls: {
      listTestClocks: (db) => testClocks.listTestClocks(db, 20, CLOCK),
      findTestClock: (db) => testClocks.findTestClock(db, CLOCK),
      lockTestClock: (db) => testClocks.lockTestClock(db, CLOCK),
      shareLockTestClock: (db) => testClocks.shareLockTestClock(db, CLOCK),
      insertTestClock: (db) => testClocks.insertTestClock(db, { name: 'c', frozen_time: new Date(0) }),
      updateTestClock: async (db) => {
        const made = await testClocks.insertTestClock(db, { name: 'c', frozen_time: new Date(0) });
        await testClocks.updateTestClock(db, made.id, { status: 'ready' });
      },
    },
  },
  webhooks: {
    module: webhooks,
    calls: {
      listWebhookEndpoints: (db) =>
        webhooks.listWebhookEndpoints(db, { limit: 20, after: WEBHOOK_ENDPOINT, status: 'enabled' }),
      findWebhookEndpoint: (db) => webhooks.findWebhookEndpoint(db, WEBHOOK_ENDPOINT),
      lockWebhookEndpoint: (db) => webhooks.lockWebhookEndpoint(db, WEBHOOK_ENDPOINT),
      insertWebhookEndpoint: (db) =>
        webhooks.insertWebhookEndpoint(db, {
          url: 'https://hooks.example.com/',
          description: 'd',
          enabled_events: ['invoice.paid'],
          secret: `whsec_${'0'.repeat(43)}`,
        }),
      updateWebhookEndpoint: async (db) => {
        const { endpointId } = await claimedWebhookDelivery(db);
        await webhooks.updateWebhookEndpoint(db, endpointId, { status: 'disabled', disabled_reason: 'r' });
      },
      currentSecret: async (db) => webhooks.currentSecret(db, (await claimedWebhookDelivery(db)).endpointId),
      deleteWebhookEndpoint: (db) => webhooks.deleteWebhookEndpoint(db, WEBHOOK_ENDPOINT),
      listWebhookDeliveries: (db) =>
        webhooks.listWebhookDeliveries(db, WEBHOOK_ENDPOINT, {
          limit: 20,
          after: WEBHOOK_DELIVERY,
          status: 'pending',
          eventId: WEBHOOK_DELIVERY,
        }),
      findWebhookDelivery: (db) => webhooks.findWebhookDelivery(db, WEBHOOK_DELIVERY),
      attemptsOf: (db) => webhooks.attemptsOf(db, [WEBHOOK_DELIVERY]),
      lockWebhookDelivery: (db) => webhooks.lockWebhookDelivery(db, WEBHOOK_DELIVERY),
      deliverNow: (db) => webhooks.deliverNow(db, WEBHOOK_DELIVERY),
      claimDueDeliveries: (db) => webhooks.claimDueDeliveries(db, 20, 40_000),
      nextDueAt: (db) => webhooks.nextDueAt(db),
      countPendingDeliveries: (db) => webhooks.countPendingDeliveries(db),
      findDeliveryToSend: (db) => webhooks.findDeliveryToSend(db, WEBHOOK_DELIVERY, WEBHOOK_ENDPOINT),
      recordAttempt: async (db) => {
        const claimed = await claimedWebhookDelivery(db);
        await webhooks.recordAttempt(db, claimed.id, claimed.lease_token, {
          status: 'pending',
          next_attempt_at: new Date(0),
          attempted_at: new Date(0),
          status_code: 503,
          error: null,
          duration_ms: 12,
        });
      },
      endpointSucceeded: (db) => webhooks.endpointSucceeded(db, WEBHOOK_ENDPOINT),
      lockEndpointHealth: (db) => webhooks.lockEndpointHealth(db, WEBHOOK_ENDPOINT),
      setEndpointHealth: (db) =>
        webhooks.setEndpointHealth(db, WEBHOOK_ENDPOINT, {
          failing_since: new Date(0),
          consecutive_failures: 1,
          retry_at: new Date(0),
        }),
    },
  },
  tenants: {
    module: tenants,
    calls: {
      newTenantId: (db) => tenants.newTenantId(db),
      insertTenant: (db) => tenants.insertTenant(db, { id: NEW_TENANT, name: 'new' }),
    },
  },
  users: {
    module: users,
    calls: {
      listUsers: (db) => users.listUsers(db, { limit: 20, after: USER, email: 'ada@example.com' }),
      findUser: (db) => users.findUser(db, USER),
      lockUser: (db) => users.lockUser(db, USER),
      insertUser: (db) => users.insertUser(db, { name: 'Ada', email: 'new@example.com' }),
      updateUser: (db) => users.updateUser(db, USER, { name: 'Ada L.', email: 'ada.l@example.com' }),
      deleteUser: (db) => users.deleteUser(db, USER),
    },
  },
  'analytics-metrics': {
    module: metrics,
    calls: { readRollups: (db) => metrics.readRollups(db, { asOf: '2026-11-23', months: 12, top: 5 }) },
  },
  'analytics-mrr': {
    module: mrr,
    calls: {
      metricsMonths: (db) => mrr.metricsMonths(db, {}, { from: '2026-01-01', to: '2026-12-01' }),
      readMetricsMonths: (db) => mrr.readMetricsMonths(db, {}, { from: '2026-01-01', to: '2026-12-01' }),
      currentMrr: (db) => mrr.currentMrr(db),
      tenantsToCompact: (db) => mrr.tenantsToCompact(db, 100),
    },
  },
  'analytics-mrr-filtered': {
    module: { metricsMonths: mrr.metricsMonths },
    calls: {
      metricsMonths: (db) =>
        mrr.metricsMonths(db, { planId: PLAN, region: 'DE' }, { from: '2026-01-01', to: '2026-12-01' }),
    },
  },
  'analytics-mrr-corrected': {
    module: { metricsMonths: mrr.metricsMonths },
    calls: {
      metricsMonths: (db) =>
        mrr.metricsMonths(
          db,
          { planId: PLAN, featureId: FEATURE },
          { from: '2026-01-01', to: '2026-12-01' },
          {
            plan: [PLAN],
            feature: [FEATURE],
            region: ['*'],
            day: ['2026-02-01'],
            columns: MRR_COLUMNS.map(() => ['1']),
          },
        ),
    },
  },
  'analytics-mrr-store': {
    module: {
      tryMrrLock: mrrStore.tryMrrLock,
      dirtyCustomers: mrrStore.dirtyCustomers,
      takeDirtyCustomers: mrrStore.takeDirtyCustomers,
      clearMarks: mrrStore.clearMarks,
      loadCounted: mrrStore.loadCounted,
      saveCounted: mrrStore.saveCounted,
      addDays: mrrStore.addDays,
      replaceCounted: mrrStore.replaceCounted,
    },
    calls: {
      tryMrrLock: (db) => mrrStore.tryMrrLock(db),
      dirtyCustomers: (db) => mrrStore.dirtyCustomers(db),
      takeDirtyCustomers: (db) => mrrStore.takeDirtyCustomers(db, 1000),
      clearMarks: (db) => mrrStore.clearMarks(db, [USER]),
      loadCounted: (db) => mrrStore.loadCounted(db, [USER]),
      replaceCounted: (db) => mrrStore.replaceCounted(db),
      saveCounted: (db) =>
        mrrStore.saveCounted(db, [
          [USER, '{"r":"","s":[]}'],
          [SUBSCRIPTION, null],
        ]),
      addDays: (db) =>
        mrrStore.addDays(db, {
          plan: [PLAN],
          feature: [FEATURE],
          region: ['*'],
          day: ['2026-02-01'],
          columns: MRR_COLUMNS.map(() => ['1']),
        }),
    },
  },
  'analytics-mrr-input': {
    module: {
      loadCustomers: mrrInput.loadCustomers,
      loadRegions: mrrInput.loadRegions,
      loadSubscriptions: mrrInput.loadSubscriptions,
    },
    calls: {
      loadCustomers: (db) => mrrInput.loadCustomers(db, [USER]),
      loadRegions: (db) => mrrInput.loadRegions(db, [USER]),
      loadSubscriptions: (db) => mrrInput.loadSubscriptions(db, [{ user: USER, subscriptions: [USER] }]),
    },
  },
  'analytics-usage-margin': {
    module: { readUsageMargin: usageMargin.readUsageMargin },
    calls: {
      readUsageMargin: (db) =>
        usageMargin.readUsageMargin(db, {
          from: '2026-01-01',
          to: '2027-01-01',
          groupBy: 'metric',
          lossLeaders: 100,
          limit: 1000,
        }),
    },
  },
  'analytics-usage-margin-dimension': {
    module: { readUsageMargin: usageMargin.readUsageMargin },
    calls: {
      readUsageMargin: (db) =>
        usageMargin.readUsageMargin(db, {
          from: '2026-01-01',
          to: '2027-01-01',
          groupBy: 'dimension',
          lossLeaders: 100,
          limit: 1000,
          after: ['tokens', '2'],
        }),
    },
  },
  'analytics-usage-margin-user': {
    module: { readUsageMargin: usageMargin.readUsageMargin },
    calls: {
      readUsageMargin: (db) =>
        usageMargin.readUsageMargin(db, {
          from: '2026-01-01',
          to: '2027-01-01',
          groupBy: 'user',
          lossLeaders: 100,
          limit: 100,
          after: ['-1.5000', '0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70'],
        }),
    },
  },
  'analytics-maintenance': {
    module: maintenance,
    calls: {
      findDifferences: (db) => maintenance.findDifferences(db, TENANT),
      aggregateCorrections: (db) => maintenance.aggregateCorrections(db, TENANT),
      applyCorrections: (db) =>
        maintenance.applyCorrections(db, {
          rollups: { month: ['2026-01-01'], status: ['active'], count: ['1'], total: ['1.00'] },
          users: { user: [USER], count: ['1'], total: ['1.00'] },
        }),
    },
  },
};

class Rollback extends Error {}

/** A webhook endpoint for every event, an event, and the delivery the trigger made, claimed. */
async function claimedWebhookDelivery(db: Db): Promise<webhooks.ClaimedDelivery & { endpointId: string }> {
  const endpoint = await webhooks.insertWebhookEndpoint(db, {
    url: 'https://hooks.example.com/',
    description: null,
    enabled_events: ['*'],
    secret: `whsec_${'0'.repeat(43)}`,
  });
  const event = {
    type: 'user.created',
    resource_type: 'user',
    resource_id: USER,
    actor: KEY,
    request_id: null,
  };
  for (const query of events.insertEvents(db, [{ ...event, data: {} }])) await db.executeQuery(query);
  const [claimed] = await webhooks.claimDueDeliveries(db, 1, 60_000);
  if (!claimed) throw new Error(`no delivery was made for webhook endpoint ${endpoint.id}`);
  return { ...claimed, endpointId: endpoint.id };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** Writes the file, or in check mode reports whether it differs. */
function emit(file: string, content: string, drift: string[]): void {
  if (!check) return writeFileSync(file, content);
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== content) drift.push(file);
}

runMain(async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'db-snapshots-'));
  rmSync(dataDir, { recursive: true });
  const server = await startEmbeddedPostgres({
    dataDir,
    port: await freePort(),
    ephemeral: true,
    settings: { fsync: 'off' },
  });
  const drift: string[] = [];
  try {
    await ensureDatabase(server.url, 'snapshots');
    const url = databaseUrl(server.url, 'snapshots');
    let recorded: string[] = [];
    const db = createDb(url, { poolSize: 1, onQuery: (text) => recorded.push(text) });
    try {
      await migrateToLatest(db);

      // 1. The tables, as kysely-codegen reads them (int8 and numeric stay exact strings, dates strings).
      const generated = execFileSync(
        'npx',
        [
          'kysely-codegen',
          '--url',
          url,
          '--print',
          '--exclude-pattern',
          'kysely_*',
          '--numeric-parser',
          'string',
          '--date-parser',
          'string',
          '--log-level',
          'error',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      emit(
        TYPES_FILE,
        `// Generated by \`make gen\` (src/cli/db-snapshots.ts) from the migrated schema: never edit.\n${generated}`,
        drift,
      );

      // 2. The SQL of every query function.
      await sql`insert into tenants (id, name) values (${TENANT}, 'snapshots')`.execute(db);
      await db.transaction().execute(async (trx) => {
        await sql`select set_config('app.tenant_id', ${TENANT}, true)`.execute(trx);
        await sql`insert into users (id, name, email) values (${USER}, 'Ada', 'ada@example.com')`.execute(
          trx,
        );
        await sql`insert into features (id, name) values (${FEATURE}, 'pro')`.execute(trx);
        await sql`insert into subscriptions (id, user_id, status, plan_cost, start_date)
          values (${SUBSCRIPTION}, ${USER}, 'active', 9.99, '2026-01-01')`.execute(trx);
        await sql`insert into plans (id, code, name, interval) values (${PLAN}, 'pro', 'Pro', 'month')`.execute(
          trx,
        );
        await sql`insert into plan_versions (id, plan_id, number, price_model, amount)
          values (${PLAN_VERSION}, ${PLAN}, 1, 'flat', 9.99)`.execute(trx);
        await sql`insert into coupons (id, name, amount_off, duration) values (${COUPON}, 'Welcome', 10, 'once')`.execute(
          trx,
        );
        await sql`insert into tax_rates (id, code, name, percentage, region, effective_from)
          values (${TAX_RATE}, 'VAT', 'VAT', 19, 'DE', '2020-01-01')`.execute(trx);
        await sql`insert into invoices (id, subscription_id, user_id, period_start, period_end, invoice_date,
          lines, subtotal, taxes, tax_total, total)
          values (${INVOICE}, ${SUBSCRIPTION}, ${USER}, '2026-01-01', '2026-02-01', '2026-01-01', '[]', 9.99, '[]', 0, 9.99)`.execute(
          trx,
        );
        await sql`insert into api_keys (id, name, prefix, key_hash, role)
          values (${KEY}, 'k', 'sk_11111111', ${Buffer.alloc(32)}, 'admin')`.execute(trx);
        await sql`insert into billable_metrics (id, code, name, aggregation)
          values (${BILLABLE_METRIC}, 'calls', 'Calls', 'count')`.execute(trx);
        await sql`insert into wallets (id, user_id, name, rate) values (${WALLET}, ${USER}, 'Credits', 1)`.execute(
          trx,
        );
        await sql`insert into wallet_grants (id, wallet_id, kind, credits, remaining)
          values (${GRANT}, ${WALLET}, 'free', 10, 10)`.execute(trx);
        await sql`insert into wallet_holds (id, wallet_id, credits, expires_at)
          values (${HOLD}, ${WALLET}, 1, '2026-01-01T00:05:00Z')`.execute(trx);
      });
      mkdirSync(SQL_DIR, { recursive: true });
      const files = new Set<string>();
      for (const [name, { module, calls }] of Object.entries(CALLS)) {
        const exported = Object.entries(module)
          .filter(([, value]) => typeof value === 'function')
          .map(([key]) => key);
        const missing = exported.filter((fn) => !(fn in calls));
        if (missing.length > 0) {
          throw new StartupError(`add ${missing.join(', ')} of ${name} to CALLS in src/cli/db-snapshots.ts`);
        }
        const sections: string[] = [];
        for (const [fn, call] of Object.entries(calls)) {
          recorded = [];
          // As the app role in the placeholder tenant, like a request; nothing is kept.
          await db
            .transaction()
            .execute(async (trx) => {
              const tenant = TENANT_OF[`${name}.${fn}`] ?? TENANT;
              await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenant}, true)`.execute(
                trx,
              );
              recorded = [];
              await call(trx);
              throw new Rollback();
            })
            .catch((error: unknown) => {
              // A constraint refusing the placeholder values still means PostgreSQL took the SQL.
              if (error instanceof Rollback || sqlState(error)?.startsWith('23')) return;
              throw new StartupError(`${name}.${fn} failed: ${String(error)}`);
            });
          const statements = recorded.filter((text) => !/^(begin|commit|rollback)$/i.test(text.trim()));
          sections.push(`-- ${fn}\n${statements.map((text) => `${text.trim()};`).join('\n')}\n`);
        }
        const file = path.join(SQL_DIR, `${name}.sql`);
        files.add(file);
        emit(
          file,
          `-- Generated by \`make gen\` from src/ (src/cli/db-snapshots.ts): never edit.\n\n${sections.join('\n')}`,
          drift,
        );
      }
      for (const file of readdirSync(SQL_DIR).map((f) => path.join(SQL_DIR, f))) {
        if (!files.has(file)) {
          if (check) drift.push(`${file} (no longer generated)`);
          else rmSync(file);
        }
      }
    } finally {
      await db.destroy();
    }
  } finally {
    await server.stop();
  }
  if (drift.length > 0) {
    throw new StartupError(`out of date, run make gen: ${drift.join(', ')}`);
  }
  console.log(
    check ? 'db/sql and generated/database.ts are up to date' : `wrote ${TYPES_FILE} and ${SQL_DIR}/`,
  );
});
