// Prometheus metrics: requests by operation and status, their latency, the database pool, and
// the process (prom-client's defaults). Served at /metrics to holders of METRICS_TOKEN, with the
// background worker's (jobs, queue depth, webhook deliveries: prom-client's default registry)
// when this process runs it.
import cluster from 'node:cluster';
import { randomUUID, timingSafeEqual } from 'node:crypto';
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

/**
 * GET /metrics, for a scraper presenting `Authorization: Bearer <token>`. Without a token
 * configured it answers 404 like any unknown path: metrics are off.
 */
export function metricsHandler(metrics: Metrics, token: string | undefined): RequestHandler {
  const expected = token && Buffer.from(`Bearer ${token}`);
  return async (req, res, next) => {
    if (!expected) return next();
    const presented = Buffer.from(req.get('authorization') ?? '');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer')
        .type('text/plain')
        .send('metrics need the metrics token\n');
      return;
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
  const expected = Buffer.from(`Bearer ${token}`);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    const presented = Buffer.from(req.headers.authorization ?? '');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      res
        .writeHead(401, { 'Content-Type': 'text/plain', 'WWW-Authenticate': 'Bearer' })
        .end('metrics need the metrics token\n');
      return;
    }
    workerRegistry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': workerRegistry.contentType }).end(text),
      (error: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
