// The first middleware: gives every request an id and its operation of openapi.yaml, and when its
// response is done writes one access log line and records it in the metrics. Never logs the
// body, the query string or the key.
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';
import { findOperation, type Operation } from '../operations.js';
import type { Metrics } from './metrics.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** X-Request-Id: the caller's when well-formed, else generated. */
    id: string;
    /** The operation of openapi.yaml this request is for; undefined for other paths. */
    operation?: Operation;
  }
}

/** Letters, digits and -_.:/+= up to 128: what tracing systems use, and safe in logs and headers. */
const WELL_FORMED = /^[\w.:/+=-]{1,128}$/;

export function observe(logger: Logger, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && WELL_FORMED.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    // HEAD works wherever GET does (http/head.ts).
    req.operation = findOperation(req.method === 'HEAD' ? 'GET' : req.method, req.path);
    res.once('close', () => {
      const ms = performance.now() - started;
      const operation = req.operation?.operationId ?? 'none';
      // A response cut before its headers (the drain's timeout) has no status: 0, not 200.
      const status = res.headersSent ? res.statusCode : 0;
      metrics.observe(operation, req.method, status, ms / 1000);
      const caller = req.caller;
      logger.info(
        {
          request_id: req.id,
          method: req.method,
          path: req.originalUrl.split('?')[0],
          operation,
          status,
          latency_ms: Math.round(ms * 10) / 10,
          ...(caller?.kind === 'tenant' ? { tenant_id: caller.tenantId, key_id: caller.keyId } : {}),
          ...(caller?.kind === 'platform' ? { key_id: 'platform' } : {}),
          // The client went away before the whole response was written.
          ...(res.writableFinished ? {} : { aborted: true }),
        },
        'request',
      );
    });
    next();
  };
}
