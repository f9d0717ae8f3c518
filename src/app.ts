// Builds the Express app (no listen), so tests run it in-process against their own database.
// The middleware order is the request's path: cheap and public things first, then who is calling,
// then what they sent, then the operation.
import { countRawMembers, rejectDuplicateMembers } from './http/duplicate-members.js';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cors from 'cors';
import express, { type Express, type Request, type RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import swaggerUi from 'swagger-ui-express';
import { KeyCache } from './auth/key-cache.js';
import { type Db, poolStats } from './database/connection.js';
import { authenticate } from './http/authenticate.js';
import { strictFormats } from './http/formats.js';
import { headAsGet } from './http/head.js';
import { createMetrics, type Metrics, metricsHandler } from './http/metrics.js';
import { acceptEmptyObject, decodedOrRefused, requireDeclaredMediaType } from './http/media-type.js';
import { continueWithin } from './http/expect-continue.js';
import { limitConcurrentWrites, type Turns, WriteTurns, writeTurn } from './http/write-gate.js';
import { observe } from './http/observe.js';
import { notFound, notFoundHandler, ProblemError, problemHandler } from './http/problems.js';
import { rejectRepeatedHeaders } from './http/repeated-headers.js';
import { refuseUnknownRoutes } from './http/unknown-routes.js';
import { rateLimitPerKey } from './http/rate-limit.js';
import { setSecurityHeaders } from './http/security-headers.js';
import { refuseInvalidUtf8, rejectBadText } from './http/text.js';
import { rejectLooseIntegers } from './http/query-integers.js';
import { canonicalBody, encodeQueryLiterals, lowercasePathIds } from './http/canonical-input.js';
import { prepareValidatorRouteMatching } from './http/route-matching.js';
import { type Logger, silentLogger } from './logger.js';
import { analyticsRouter } from './routes/analytics.js';
import { apiKeysRouter } from './routes/api-keys.js';
import { eventsRouter } from './routes/events.js';
import { featuresRouter } from './routes/features.js';
import { healthRouter } from './routes/health.js';
import { invoicesRouter, reportsRouter } from './routes/invoices.js';
import { metricsRouter } from './routes/metrics.js';
import { plansRouter } from './routes/plans.js';
import {
  billingSettingsRouter,
  invoicePaymentsRouter,
  paymentsRouter,
  refundsRouter,
  testClocksRouter,
} from './routes/payments.js';
import { subscriptionsRouter } from './routes/subscriptions.js';
import { taxRatesRouter } from './routes/tax-rates.js';
import { couponsRouter } from './routes/coupons.js';
import { tenantsRouter } from './routes/tenants.js';
import { billableMetricsRouter, subscriptionUsageRouter, usageEventsRouter } from './routes/usage.js';
import { noteInexactNumbers, refuseInexactNumbers } from './http/exact-numbers.js';
import { grantsRouter, holdsRouter, walletsRouter } from './routes/wallets.js';

import { usageMarginRouter } from './routes/usage-margin.js';
import { usersRouter } from './routes/users.js';
import { webhookDeliveriesRouter, webhookEndpointsRouter } from './routes/webhook-endpoints.js';
import type { ServiceContext } from './services/context.js';
import { SharedRateLimitStore } from './services/rate-limits.js';
import { spec, specYaml } from './spec.js';
import type { UrlPolicy } from './webhooks/ssrf.js';

/** The body limit of POST /usage-events/batch (1,000 events). */
const USAGE_BATCH_LIMIT = 1024 * 1024;

/**
 * Static files, but not TypeScript sources or declarations: the path as the file server reads it
 * (percent-decoded: format.d%2Ets is format.d.ts), else the next handler (404).
 */
const withoutTypeScript =
  (serve: RequestHandler): RequestHandler =>
  (req, res, next) => {
    let file: string;
    try {
      file = decodeURIComponent(req.path);
    } catch {
      return next(); // not a name any file has
    }
    return /\.[cm]?ts$/i.test(file) ? next() : serve(req, res, next);
  };

const noRoute = (req: Request) => notFound(`No route ${req.method} ${req.originalUrl.split('?')[0]}.`);

/**
 * GET and HEAD only: for the files served beside the API. Another method is 405 where GET finds
 * something (`served`, given the path under the mount point), and 404 where it does not, as GET.
 */
const readOnly =
  (served: (path: string) => boolean = () => true): RequestHandler =>
  (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if (!served(req.path)) throw noRoute(req);
    throw new ProblemError(405, 'method-not-allowed', `${req.method} method not allowed`, undefined, {
      Allow: 'GET, HEAD',
    });
  };

const DASHBOARD_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboard');
const UPLOT_DIST = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js'));

/**
 * Whether GET answers a file for this path under /dashboard (as the file servers below do: the
 * index for the directory itself, no TypeScript, no dot-file, nothing outside their directories).
 */
function dashboardFile(urlPath: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return false;
  }
  if (/\.[cm]?ts$/i.test(decoded) || decoded.split('/').some((segment) => segment.startsWith('.')))
    return false;
  const [dir, rest] = decoded.startsWith('/vendor/')
    ? [UPLOT_DIST, decoded.slice('/vendor'.length)]
    : [DASHBOARD_DIR, decoded === '/' ? '/index.html' : decoded];
  const file = path.join(dir, rest);
  if (!file.startsWith(dir + path.sep)) return false;
  try {
    return statSync(file).isFile();
  } catch {
    return false; // none, or a file's name with a slash after it
  }
}

/**
 * What GET answers under /docs: the page (the directory itself), its generated init script, the
 * contract, and the Swagger UI files the page loads, by these names exactly. Swagger UI answered
 * its page for any other path, and its file server the rest of its package (its stock
 * index.html, which loads another API's contract, its Node modules, source maps, a doubled
 * slash's //swagger-ui.css): all 404 now, as under /dashboard.
 */
const DOCS_FILES = new Set([
  '/',
  '/swagger-ui-init.js',
  '/openapi.json',
  '/openapi.yaml',
  '/swagger-ui.css',
  '/swagger-ui-bundle.js',
  '/swagger-ui-standalone-preset.js',
  '/favicon-16x16.png',
  '/favicon-32x32.png',
]);

export interface AppOptions {
  /** Connects as the app role, so row-level security applies to every request. */
  db: Db;
  /** Check every response against the spec; a mismatch becomes a logged 500. */
  validateResponses: boolean;
  platformAdminKey?: string | undefined;
  rateLimitPerMinute?: number;
  corsOrigins?: readonly string[];
  /** Bytes. */
  bodyLimit?: number;
  /** Access log lines and unexpected errors; silent when absent. */
  logger?: Logger;
  /** GET /metrics needs `Authorization: Bearer <metricsToken>`; unset, it is not served. */
  metricsToken?: string | undefined;
  /** The registry /metrics reads; one per app unless given. */
  metrics?: Metrics;
  /** How often rate-limit counts are shared with the other processes (see services/rate-limits.ts). */
  rateLimitSyncMs?: number;
  /**
   * Requests that write running at once in this process (WRITE_CONCURRENCY), or the cluster's
   * turns (http/cluster-write-turns.ts); unset: no bound.
   */
  writeConcurrency?: Turns | number | undefined;
  /** Tests only: see ServiceContext.faults. */
  faults?: ServiceContext['faults'];
  /** Which webhook URLs are accepted (WEBHOOKS_ALLOW_PRIVATE_URLS); private ones are refused by default. */
  webhooks?: UrlPolicy;
}

export function createApp({
  db,
  validateResponses,
  platformAdminKey,
  rateLimitPerMinute = 600,
  corsOrigins = [],
  bodyLimit = 100 * 1024,
  logger = silentLogger(),
  metricsToken,
  metrics = createMetrics(() => poolStats(db)),
  rateLimitSyncMs = 500,
  writeConcurrency,
  faults,
  webhooks = { allowPrivateUrls: false },
}: AppOptions): Express {
  // One set of turns for the gate and for the services that take theirs per transaction.
  const turns = typeof writeConcurrency === 'number' ? new WriteTurns(writeConcurrency) : writeConcurrency;
  const ctx: ServiceContext = {
    db,
    keyCache: new KeyCache(),
    ...(faults ? { faults } : {}),
    ...(turns ? { writeTurn: () => writeTurn(turns) } : {}),
  };
  const app = express();
  // Only the operations that declare 304 answer it, by their own check (http/preconditions.ts).
  // Express's would answer any GET whose ETag matches If-None-Match, and every GET sent
  // `If-None-Match: *`, lists and reports too: an answer their clients have no case for.
  Object.defineProperty(app.request, 'fresh', { configurable: true, get: () => false });
  // Repeated parameters become arrays (status=a&status=b); nothing in the spec needs nested ones.
  app.set('query parser', 'simple');
  // Responses carry no computed ETag: hashing every body costs CPU on every request.
  app.set('etag', false);
  app.set('x-powered-by', false);
  // Routes match paths exactly as src/operations.ts does: auth must never see a path that a router
  // matches but the operation table does not (e.g. /API/v1/tenants). A trailing slash is another
  // path, which the contract does not have (404), not a second name for an operation.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  // Ids in the path in lower case before anything reads it (http/canonical-input.ts).
  app.use(lowercasePathIds);
  app.use(encodeQueryLiterals);
  app.use(observe(logger, metrics));
  // Before anything that answers: every response carries them, the probes' and /metrics' too.
  app.use(setSecurityHeaders);
  // Probes answer before anything else: load balancers call them often, and they take no input.
  app.use(healthRouter(ctx));
  app.get('/metrics', metricsHandler(metrics, metricsToken));

  if (corsOrigins.length > 0) {
    const exposedHeaders = ['Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After', 'X-Request-Id'];
    app.use(cors({ origin: [...corsOrigins], exposedHeaders }));
  }

  // The contract itself, and its docs, are served before validation: they are not API operations.
  // They are read only: another method is 405, where Swagger UI answered its page to any.
  app.all(['/openapi.yaml', '/openapi.json'], readOnly()); // these paths exactly (strict routing)
  app.use('/docs', (req, _res, next) => (DOCS_FILES.has(req.path) ? next() : next(noRoute(req))));
  app.use('/docs', readOnly());
  app.use('/dashboard', readOnly(dashboardFile));
  // Under /docs too, where a generator is often pointed.
  app.get(['/openapi.yaml', '/docs/openapi.yaml'], (_req, res) => {
    res.type('application/yaml').send(specYaml);
  });
  app.get(['/openapi.json', '/docs/openapi.json'], (_req, res) => {
    res.json(spec);
  });
  // Swagger UI's "Try it out" calls this server first (the contract's own entry is a template).
  const docsSpec = { ...spec, servers: [{ url: '/', description: 'This server' }, ...spec.servers] };
  app.use(
    '/docs',
    swaggerUi.serve,
    swaggerUi.setup(docsSpec, { customSiteTitle: 'Subscriptions API', customCss: '' }),
  );
  // The metrics dashboard: static files only (its data comes from the API with the user's key).
  // The chart library is served from our own origin, as the CSP allows no other script source.
  // TypeScript declarations (ours, uPlot's) are for compilers, not browsers (video/mp2t to them).
  app.use('/dashboard/vendor', withoutTypeScript(express.static(UPLOT_DIST, { index: false })));
  app.use('/dashboard', withoutTypeScript(express.static(DASHBOARD_DIR)));

  // Who is calling comes before what they sent: without a valid key and scope, the body is never
  // read, so a caller learns nothing about the API (no 400, 413 or 415 before the 401).
  app.use(authenticate(ctx, platformAdminKey));
  // A route the contract does not have is 404 (or 405) before its body is read.
  app.use(refuseUnknownRoutes);
  app.use(rateLimitPerKey(rateLimitPerMinute, new SharedRateLimitStore(ctx, rateLimitSyncMs)));
  app.use(rejectRepeatedHeaders);
  // Admitted requests that write run a few at a time (http/write-gate.ts); tests run unbounded.
  if (turns !== undefined) app.use(limitConcurrentWrites(turns));
  // Content in a media type the operation does not declare (or none) is refused, never ignored.
  app.use(requireDeclaredMediaType);
  // Every JSON media type an operation may declare (application/json, application/merge-patch+json).
  // A batch of up to 1,000 usage events needs more room than any other body.
  // Bytes that are not UTF-8 are refused (http/text.ts), never decoded to U+FFFD.
  // A member named twice in an object is refused after the parse (http/duplicate-members.ts).
  const json = {
    type: ['application/json', 'application/*+json'],
    verify: (req: object, res: unknown, body: Buffer) => {
      refuseInvalidUtf8(req, res, body);
      countRawMembers(req, res, body);
    },
  };
  // Usage events: a number JSON.parse would round is refused, read in the raw body (http/exact-numbers.ts).
  const usageJson = {
    ...json,
    verify: (req: object, res: unknown, body: Buffer) => {
      json.verify(req, res, body);
      noteInexactNumbers(req, res, body);
    },
  };
  // Each parser sends 100 Continue first to a client waiting for it, if its body fits.
  app.use(
    '/api/v1/usage-events/batch',
    continueWithin(USAGE_BATCH_LIMIT),
    decodedOrRefused(express.json({ ...usageJson, limit: USAGE_BATCH_LIMIT })),
  );
  app.use(
    '/api/v1/usage-events',
    continueWithin(bodyLimit),
    decodedOrRefused(express.json({ ...usageJson, limit: bodyLimit })),
  );
  app.use(continueWithin(bodyLimit), decodedOrRefused(express.json({ ...json, limit: bodyLimit })));
  app.use(acceptEmptyObject);
  app.use(rejectDuplicateMembers);
  app.use(rejectBadText);
  app.use(rejectLooseIntegers);
  app.use(headAsGet);
  // The validator finds each request's operation among routes prepared once (http/route-matching.ts).
  prepareValidatorRouteMatching();
  app.use(
    OpenApiValidator.middleware({
      apiSpec: structuredClone(spec) as never,
      validateRequests: { allErrors: true },
      validateSecurity: false, // authenticate() above owns authentication and scopes
      validateResponses: validateResponses ? { allErrors: true } : false,
      validateFormats: true,
      ajvFormats: { mode: 'full' },
      formats: strictFormats,
    }),
  );
  // Ids in the body lowercased, instants to the millisecond, once the validator took them.
  app.use(canonicalBody);
  // Usage events' numbers the JSON parser rounded: 422 once the contract's 400s are out of the way.
  app.use('/api/v1/usage-events', refuseInexactNumbers);

  app.use('/api/v1/tenants', tenantsRouter(ctx));
  app.use('/api/v1/api-keys', apiKeysRouter(ctx));
  app.use('/api/v1/users', usersRouter(ctx));
  app.use('/api/v1/features', featuresRouter(ctx));
  app.use('/api/v1/subscriptions', subscriptionsRouter(ctx));
  app.use('/api/v1/analytics', analyticsRouter(ctx));
  app.use('/api/v1/metrics', metricsRouter(ctx));
  app.use('/api/v1/events', eventsRouter(ctx));
  app.use('/api/v1/plans', plansRouter(ctx));
  app.use('/api/v1/tax-rates', taxRatesRouter(ctx));
  app.use('/api/v1/coupons', couponsRouter(ctx));
  app.use('/api/v1/invoices', invoicesRouter(ctx));
  app.use('/api/v1/invoices', invoicePaymentsRouter(ctx));
  app.use('/api/v1/payments', paymentsRouter(ctx));
  app.use('/api/v1/refunds', refundsRouter(ctx));
  app.use('/api/v1/test-clocks', testClocksRouter(ctx));
  app.use('/api/v1/billing-settings', billingSettingsRouter(ctx));
  app.use('/api/v1/reports', reportsRouter(ctx));
  app.use('/api/v1/reports', usageMarginRouter(ctx));
  app.use('/api/v1/webhook-endpoints', webhookEndpointsRouter(ctx, webhooks));
  app.use('/api/v1/webhook-deliveries', webhookDeliveriesRouter(ctx));
  app.use('/api/v1/billable-metrics', billableMetricsRouter(ctx));
  app.use('/api/v1/usage-events', usageEventsRouter(ctx));
  app.use('/api/v1/subscriptions', subscriptionUsageRouter(ctx));
  app.use('/api/v1/wallets', walletsRouter(ctx));
  app.use('/api/v1/grants', grantsRouter(ctx));
  app.use('/api/v1/holds', holdsRouter(ctx));

  app.use(notFoundHandler);
  app.use(problemHandler(logger));
  return app;
}
