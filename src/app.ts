// Builds the Express app (no listen), so tests run it in-process against their own database.
import cors from 'cors';
import express, { type Express } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import { KeyCache } from './auth/key-cache.js';
import type { Db } from './database/connection.js';
import { authenticate } from './http/authenticate.js';
import { strictFormats } from './http/formats.js';
import { headAsGet } from './http/head.js';
import { notFoundHandler, problemHandler } from './http/problems.js';
import { rateLimitPerKey } from './http/rate-limit.js';
import { rejectBadText } from './http/text.js';
import { analyticsRouter } from './routes/analytics.js';
import { apiKeysRouter } from './routes/api-keys.js';
import { featuresRouter } from './routes/features.js';
import { healthRouter } from './routes/health.js';
import { subscriptionsRouter } from './routes/subscriptions.js';
import { tenantsRouter } from './routes/tenants.js';
import { usersRouter } from './routes/users.js';
import type { ServiceContext } from './services/context.js';
import { spec, specYaml } from './spec.js';

export interface AppOptions {
  /** Connects as the app role, so row-level security applies to every request. */
  db: Db;
  /** Check every response against the spec; a mismatch becomes a logged 500. */
  validateResponses: boolean;
  platformAdminKey?: string | undefined;
  rateLimitPerMinute?: number;
  corsOrigins?: readonly string[];
  bodyLimit?: string;
  log?: (message: string, error: unknown) => void;
}

export function createApp({
  db,
  validateResponses,
  platformAdminKey,
  rateLimitPerMinute = 600,
  corsOrigins = [],
  bodyLimit = '100kb',
  log = console.error,
}: AppOptions): Express {
  const ctx: ServiceContext = { db, keyCache: new KeyCache() };
  const app = express();
  app.set('query parser', 'extended');
  // Routes match paths exactly as src/operations.ts does: auth must never see a path that a router
  // matches but the operation table does not (e.g. /API/v1/tenants).
  app.set('case sensitive routing', true);
  app.set('strict routing', false);
  // upgrade-insecure-requests would break Swagger UI served over plain http (local development).
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  if (corsOrigins.length > 0) {
    const exposedHeaders = ['Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After'];
    app.use(cors({ origin: [...corsOrigins], exposedHeaders }));
  }

  // The contract itself, and its docs, are served before validation: they are not API operations.
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(specYaml);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(spec);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(spec, { customSiteTitle: 'Subscriptions API' }));

  // Who is calling comes before what they sent: without a valid key and scope, the body is never
  // read, so a caller learns nothing about the API (no 400, 413 or 415 before the 401).
  app.use(authenticate(ctx, platformAdminKey));
  app.use(rateLimitPerKey(rateLimitPerMinute));
  // Parse every JSON-ish type so the validator, not the parser, decides what is acceptable.
  app.use(express.json({ limit: bodyLimit, type: ['application/json', 'application/*+json'] }));
  app.use(rejectBadText);
  app.use(headAsGet);
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

  app.use(healthRouter(ctx));
  app.use('/api/v1/tenants', tenantsRouter(ctx));
  app.use('/api/v1/api-keys', apiKeysRouter(ctx));
  app.use('/api/v1/users', usersRouter(ctx));
  app.use('/api/v1/features', featuresRouter(ctx));
  app.use('/api/v1/subscriptions', subscriptionsRouter(ctx));
  app.use('/api/v1/analytics', analyticsRouter(ctx));

  app.use(notFoundHandler);
  app.use(problemHandler(log));
  return app;
}
