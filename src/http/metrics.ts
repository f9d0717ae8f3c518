// Prometheus metrics: requests by operation and status, their latency, the database pool, and
// the process (prom-client's defaults). Served at /metrics to holders of METRICS_TOKEN, with the
// background worker's (jobs, queue depth, webhook deliveries: prom-client's default registry)
// when this process runs it.
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { RequestHandler } from 'express';
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
  register as workerRegistry,
} from 'prom-client';
import { sameKey } from '../auth/keys.js';
import { bearerToken } from './bearer.js';
import { problemBody, ProblemError, type ProblemType } from './problems.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { listen } from './server.js';

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface Metrics {
  readonly registry: Registry;
  observe(operation: string, method: string, status: number, seconds: number): void;
}

export function createMetrics(poolStats: () => PoolStats | undefined): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // In a cluster worker, the primary collects this registry from every worker (see below).
  // (Constructing an AggregatorRegistry is what makes a worker answer the primary's requests.)
  if (cluster.isWorker) {
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
  }
  const labelNames = ['operation', 'method', 'status'] as const;
  type Label = (typeof labelNames)[number];
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by operationId of openapi.yaml (or "none"), method and status.',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request arriving to the response being sent.',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const pool = new Gauge({
    name: 'db_pool_connections',
    help: 'Database pool connections: total open, idle, and requests waiting for one.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = poolStats();
      if (!stats) return;
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  void pool;
  // The labelled children, made once per label set: looking labels up on every request costs more.
  const children = new Map<string, { count: Counter.Internal; time: Histogram.Internal<Label> }>();
  return {
    registry,
    observe(operation, method, status, seconds) {
      const id = `${operation} ${method} ${status}`;
      let child = children.get(id);
      if (!child) {
        const labels = { operation, method, status: String(status) };
        child = { count: requests.labels(labels), time: duration.labels(labels) };
        children.set(id, child);
      }
      child.count.inc();
      child.time.observe(seconds);
    },
  };
}

/** Whether an Authorization header carries the metrics token, read as API keys are read. */
function presentsToken(header: string | undefined, token: string): boolean {
  const presented = bearerToken(header);
  return presented !== undefined && sameKey(presented, token);
}

const NEEDS_TOKEN = 'Metrics need the metrics token: Authorization: Bearer <METRICS_TOKEN>.';

/**
 * GET /metrics, for a scraper presenting `Authorization: Bearer <token>`. Without a token
 * configured it answers 404 like any unknown path: metrics are off.
 */
export function metricsHandler(metrics: Metrics, token: string | undefined): RequestHandler {
  return async (req, res, next) => {
    if (!token) return next();
    if (!presentsToken(req.get('authorization'), token)) {
      throw new ProblemError(401, 'unauthorized', NEEDS_TOKEN, undefined, { 'WWW-Authenticate': 'Bearer' });
    }
    const text = cluster.isWorker
      ? await askPrimary()
      : await Registry.merge([metrics.registry, workerRegistry]).metrics();
    res.type(metrics.registry.contentType).send(text);
  };
}

// With WORKERS > 1 a scrape reaches one worker, which asks the primary for every worker's
// metrics, summed by prom-client's AggregatorRegistry.
const REQUEST = 'subscriptions:metrics-request';
const REPLY = 'subscriptions:metrics-reply';
type Message = { type?: string; id?: string; text?: string };

function askPrimary(): Promise<string> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the cluster primary did not answer with metrics within 5 s'));
    }, 5000);
    const onMessage = (message: Message) => {
      if (message?.type !== REPLY || message.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(message.text ?? '');
    };
    process.on('message', onMessage);
    process.send!({ type: REQUEST, id });
  });
}

/** In the cluster primary: answers workers' requests for the cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (server, message: Message) => {
    if (message?.type !== REQUEST) return;
    // The servers' metrics, summed, then the background worker's (it runs in the primary).
    void Promise.all([aggregator.clusterMetrics(), workerRegistry.metrics()]).then(
      ([servers, jobs]) => server.send({ type: REPLY, id: message.id, text: servers + jobs }),
      (error: unknown) => server.send({ type: REPLY, id: message.id, text: `# ${String(error)}\n` }),
    );
  });
}

/**
 * `make worker`'s own GET /metrics (the worker's registry), for the same bearer token, on its
 * own port: a worker process has no API server to serve them. Resolves once listening.
 */
export async function startWorkerMetricsServer(
  port: number,
  host: string,
  token: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const problem = (
    res: http.ServerResponse,
    [status, type, detail]: [number, ProblemType, string],
    headers: Record<string, string> = {},
  ) =>
    res
      .writeHead(status, { ...SECURITY_HEADERS, ...headers, 'Content-Type': 'application/problem+json' })
      .end(JSON.stringify(problemBody(status, type, detail)));
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return problem(res, [404, 'not-found', 'Only /metrics is served here.']);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return problem(res, [405, 'method-not-allowed', 'Use GET.'], { Allow: 'GET, HEAD' });
    }
    if (!presentsToken(req.headers.authorization, token)) {
      return problem(res, [401, 'unauthorized', NEEDS_TOKEN], { 'WWW-Authenticate': 'Bearer' });
    }
    workerRegistry.metrics().then(
      (text) =>
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': workerRegistry.contentType }).end(text),
      // A collector failed: nothing a scraper could act on, so a bare 500 as the API answers it.
      () =>
        res
          .writeHead(500, { ...SECURITY_HEADERS, 'Content-Type': 'application/problem+json' })
          .end(JSON.stringify({ type: 'about:blank', title: 'Internal Server Error', status: 500 })),
    );
  });
  // A busy port is one line naming the setting, not a stack trace (ops6 #6).
  await listen(server, port, host, 'HOST, WORKER_METRICS_PORT');
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
