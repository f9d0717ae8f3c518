// helmet's security headers (HSTS, nosniff, a Content-Security-Policy, ...) on every response:
// the probes, /metrics, 404s and the problems written outside Express included.
import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

// upgrade-insecure-requests would break Swagger UI served over plain http (local development).
export const securityHeaders = helmet({
  contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
});

/**
 * The same headers as a list, for responses written without Express (the worker's metrics
 * server, the problems Node's HTTP parser makes us write on the socket). helmet sets them
 * synchronously and, in this configuration, the same for every request.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const collector = {
    setHeader: (name: string, value: string) => (headers[name] = value),
    removeHeader: () => undefined,
  } as unknown as ServerResponse;
  securityHeaders({} as never, collector, () => undefined);
  return Object.freeze(headers);
})();

const HEADER_LIST = Object.entries(SECURITY_HEADERS);

/**
 * The app's middleware: the same headers, names and order as helmet sets them, set in one step
 * (helmet runs a dozen middlewares per request to set headers that never change).
 * test/api/security-headers.test.ts and test/api/responses-unchanged.test.ts hold them to helmet's.
 */
export const setSecurityHeaders: RequestHandler = (_req, res, next) => {
  // As helmet's hidePoweredBy does: an app this one is mounted in may have set it.
  res.removeHeader('X-Powered-By');
  for (const [name, value] of HEADER_LIST) res.setHeader(name, value);
  next();
};
