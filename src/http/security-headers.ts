// helmet's security headers (HSTS, nosniff, a Content-Security-Policy, ...) on every response:
// the probes, /metrics, 404s and the problems written outside Express included.
import type { ServerResponse } from 'node:http';
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
