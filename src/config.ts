// The only reader of process.env: everything is parsed once, here, into a frozen object.
import os from 'node:os';
import path from 'node:path';

export interface Config {
  /** An external PostgreSQL server; when absent the app runs an embedded PostgreSQL 16. */
  readonly databaseUrl: string | undefined;
  readonly embedded: { readonly dataDir: string; readonly port: number };
  readonly port: number;
  readonly host: string;
  /** Validate every response against the spec (on outside production). */
  readonly validateResponses: boolean;
  /** The largest request body, in bytes (100 KiB; a usage batch may take 1 MiB). */
  readonly bodyLimit: number;
  readonly dbPoolSize: number;
  /** How long a request waits for a database connection before answering 503. */
  readonly dbConnectTimeoutMs: number;
  /** The platform operator's key (creates tenants); unset means no one can call POST /tenants. */
  readonly platformAdminKey: string | undefined;
  readonly rateLimitPerMinute: number;
  /** Requests that write running at once in each server process; the others wait their turn. */
  readonly writeConcurrency: number;
  /** Origins allowed by CORS; empty (the default) sends no CORS headers at all. */
  readonly corsOrigins: readonly string[];
  /** On SIGTERM/SIGINT, how long in-flight requests may take to finish before they are cut. */
  readonly drainTimeoutMs: number;
  /** How long startup keeps retrying an external database that does not answer yet. */
  readonly dbStartupTimeoutMs: number;
  readonly logLevel: string;
  /** GET /metrics needs it as a bearer token; unset, /metrics is not served. */
  readonly metricsToken: string | undefined;
  /** Server processes (node:cluster) sharing the port: 1 in development, one per core in production. */
  readonly workers: number;
  /** The background worker (jobs: renewals, payments, dunning, webhooks) and its settings. */
  readonly jobs: {
    /** Run the worker inside `make start`'s process (JOBS=off: run `make worker` separately). */
    readonly inProcess: boolean;
    /** A job running longer is taken for dead (a crashed worker) and run again. */
    readonly timeoutSeconds: number;
    /** How often an idle worker looks for jobs. */
    readonly pollSeconds: number;
    /** Real-time rail settlement delays are multiplied by this (demos: 0.001). */
    readonly settlementDelayScale: number;
    /** How often a worker looks for expired jobs (a killed worker's) to run again. */
    readonly maintenanceSeconds: number;
    /** `make worker` serves GET /metrics here (when METRICS_TOKEN is set; 0: any free port). */
    readonly metricsPort: number;
    /** A failing job is retried this often, then stays failed with its last error. */
    readonly retryLimit: number;
    /** The first retry's delay; each later one doubles it (with jitter). */
    readonly retryDelaySeconds: number;
  };
  /** Webhook deliveries (src/webhooks/). */
  readonly webhooks: {
    /** Accept http: and private, loopback and link-local addresses (local development and tests only). */
    readonly allowPrivateUrls: boolean;
    /** The first retry waits up to this; each next one up to twice as long (full jitter, 6 h at most). */
    readonly retryBaseSeconds: number;
    /** Retries end this long after a delivery's first attempt; an endpoint failing this long is disabled. */
    readonly retryForSeconds: number;
    /** One attempt's time limit. */
    readonly timeoutSeconds: number;
  };
}

/** A setting is wrong: reported as one line naming it, without a stack. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Decimal digits only: Number() also reads 0x9c9e, 0b10, 1e3 and ' 8 ' (ops6 #5).
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const platformAdminKey = env.PLATFORM_ADMIN_KEY || undefined;
  if (platformAdminKey !== undefined && platformAdminKey.length < 32) {
    throw new ConfigError('PLATFORM_ADMIN_KEY must be at least 32 characters (try: openssl rand -hex 32)');
  }
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "${logLevel}"`,
    );
  }
  const metricsToken = env.METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('METRICS_TOKEN must be at least 16 characters (try: openssl rand -hex 16)');
  }
  const production = env.NODE_ENV === 'production';
  const workers = integer(env, 'WORKERS', production ? os.availableParallelism() : 1, 1, 64);
  const jobsSetting = env.JOBS || 'on';
  if (!['on', 'off'].includes(jobsSetting))
    throw new ConfigError(`JOBS must be on or off, got "${jobsSetting}"`);
  const scale = Number(env.SETTLEMENT_DELAY_SCALE || '1');
  if (!Number.isFinite(scale) || scale < 0 || scale > 1) {
    throw new ConfigError(
      `SETTLEMENT_DELAY_SCALE must be a number from 0 to 1, got "${env.SETTLEMENT_DELAY_SCALE}"`,
    );
  }
  const allowPrivate = env.WEBHOOKS_ALLOW_PRIVATE_URLS || 'false';
  if (!['true', 'false'].includes(allowPrivate)) {
    throw new ConfigError(`WEBHOOKS_ALLOW_PRIVATE_URLS must be true or false, got "${allowPrivate}"`);
  }
  return Object.freeze({
    webhooks: Object.freeze({
      allowPrivateUrls: allowPrivate === 'true',
      retryBaseSeconds: integer(env, 'WEBHOOK_RETRY_BASE_SECONDS', 30, 1, 86_400),
      retryForSeconds: integer(env, 'WEBHOOK_RETRY_FOR_SECONDS', 259_200, 1, 2_592_000),
      timeoutSeconds: integer(env, 'WEBHOOK_TIMEOUT_SECONDS', 10, 1, 60),
    }),
    workers,
    jobs: Object.freeze({
      inProcess: jobsSetting === 'on',
      timeoutSeconds: integer(env, 'JOB_TIMEOUT_SECONDS', 300, 1, 86_400),
      pollSeconds: integer(env, 'JOB_POLL_SECONDS', 2, 1, 60),
      settlementDelayScale: scale,
      maintenanceSeconds: integer(env, 'JOB_MAINTENANCE_SECONDS', 60, 1, 3600),
      metricsPort: integer(env, 'WORKER_METRICS_PORT', 9464, 0, 65535),
      retryLimit: integer(env, 'JOB_RETRY_LIMIT', 10, 0, 100),
      retryDelaySeconds: integer(env, 'JOB_RETRY_DELAY_SECONDS', 2, 1, 3600),
    }),
    logLevel,
    metricsToken,
    databaseUrl,
    embedded: Object.freeze({
      dataDir: path.resolve(env.PGDATA_DIR || '.data/postgres'),
      port: integer(env, 'EMBEDDED_PG_PORT', 54329, 1024, 65535),
    }),
    port: integer(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    validateResponses: !production,
    bodyLimit: 100 * 1024,
    dbPoolSize: integer(env, 'DB_POOL_SIZE', 10, 1, 200),
    dbConnectTimeoutMs: integer(env, 'DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
    platformAdminKey,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    writeConcurrency: integer(
      env,
      'WRITE_CONCURRENCY',
      Math.max(2, Math.round((2 * os.availableParallelism()) / workers)),
      1,
      10_000,
    ),
    drainTimeoutMs: integer(env, 'SHUTDOWN_DRAIN_SECONDS', 10, 0, 3600) * 1000,
    dbStartupTimeoutMs: integer(env, 'DB_STARTUP_TIMEOUT_SECONDS', 30, 0, 3600) * 1000,
    corsOrigins: Object.freeze(origins(env.CORS_ORIGINS)),
  });
}

/** CORS_ORIGINS: each an origin as browsers send it (scheme://host[:port]), or nothing matches. */
function origins(raw: string | undefined): string[] {
  const list = (raw ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of list) {
    let parsed: string | undefined;
    try {
      parsed = new URL(origin).origin;
    } catch {
      parsed = undefined;
    }
    if (parsed !== origin)
      throw new ConfigError(
        `CORS_ORIGINS must be origins like https://app.example.com (scheme://host[:port], no path), got "${origin}"`,
      );
  }
  return list;
}
