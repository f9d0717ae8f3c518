// The HTTP server around the Express app. Some requests never reach Express: headers over the
// size limit, malformed framing (bad chunked bodies, Content-Length with Transfer-Encoding), an
// unknown method, a client too slow to send its headers. Node answers those with a bare status
// line; this answers them with problem+json too, while nothing of a response has been sent yet.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import { expectsNothing, holdContinue, onlyContinue } from './expect-continue.js';
import { problemBody, type ProblemType } from './problems.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { StartupError } from '../startup.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
};

function classify(code: string | undefined): [number, ProblemType, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [
        431,
        'request-header-fields-too-large',
        'The request headers are over the size limit (16 KiB).',
      ];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'request-timeout', 'The request was not received in time.'];
    case 'HPE_INVALID_METHOD':
      return [501, 'not-implemented', 'The request method is not one this server implements.'];
    default:
      return [
        400,
        'malformed-request',
        'The request is not valid HTTP/1.1 (framing, headers or body encoding).',
      ];
  }
}

function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  const response = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
  // ECONNRESET and friends: the client is gone. A response already started cannot be replaced.
  if (error.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  writeProblem(socket, ...classify(error.code));
}

/** A problem of the server's own, with a request id of its own: the request's headers were not read. */
function ownProblem(status: number, type: ProblemType, detail: string, target?: string) {
  const requestId = randomUUID();
  // The request's path, as the app's problems name it, when the request line was read.
  const instance = target?.split('?')[0];
  return {
    headers: {
      'Content-Type': 'application/problem+json; charset=utf-8',
      'X-Request-Id': requestId,
      ...SECURITY_HEADERS,
      Connection: 'close',
    },
    body: JSON.stringify({
      ...problemBody(status, type, detail),
      ...(instance ? { instance } : {}),
      request_id: requestId,
    }),
  };
}

/**
 * A Host value (RFC 9110, 7.2): uri-host [ ":" port ], an IP literal in brackets (an IPv6 zone
 * or IPvFuture too) or a reg-name, not empty: an http URI's host is never empty (RFC 9110, 4.2.1).
 */
const HOST = /^(?:\[[A-Za-z0-9:._~%-]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?$/;

/** What is wrong with the request's Host header (RFC 9112, 3.2), if anything. */
function badHost(req: http.IncomingMessage): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i]!.toLowerCase() === 'host') values.push(req.rawHeaders[i + 1]!);
  if (values.length === 0)
    return req.httpVersion === '1.1' ? 'An HTTP/1.1 request needs a Host header.' : undefined;
  if (values.length > 1) return 'A request has one Host header, not several.';
  return HOST.test(values[0]!) ? undefined : 'The Host header is not a host name with an optional port.';
}

/** A problem written on the socket, which is then closed: nothing of a response was sent yet. */
function writeProblem(socket: Duplex, status: number, type: ProblemType, detail: string): void {
  const { headers, body } = ownProblem(status, type, detail);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n` +
      Object.entries({ ...headers, 'Content-Length': String(Buffer.byteLength(body)) })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      '\r\n' +
      body,
  );
}

/**
 * A request target in absolute form (`GET http://host/api/v1/users`), which RFC 9112 (3.2.2) has
 * servers accept, as its path and query: the routes match paths.
 */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

const draining = new WeakSet<http.Server>();
/** Each server's responses not yet sent: told to close their connection when draining starts. */
const inFlight = new WeakMap<http.Server, Set<http.ServerResponse>>();

export function createHttpServer(app: Express): http.Server {
  const pending = new Set<http.ServerResponse>();
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    // While draining, every response closes its connection: keep-alive clients reconnect to
    // another instance instead of sending more requests here.
    if (draining.has(server)) res.setHeader('Connection', 'close');
    else {
      pending.add(res);
      res.once('close', () => pending.delete(res));
    }
    if (req.url !== undefined && ABSOLUTE_FORM.test(req.url)) {
      const target = req.url.replace(ABSOLUTE_FORM, '');
      req.url = target.startsWith('/') ? target : `/${target}`;
    }
    // HTTP/1.1 requires Host, once, with a valid value (RFC 9112, 3.2): Node would answer a bare
    // 400 without a body to none, and keep the first of two.
    const hostProblem = badHost(req);
    if (hostProblem) {
      const { headers, body } = ownProblem(400, 'malformed-request', hostProblem, req.url);
      res.writeHead(400, { ...headers, 'Content-Length': Buffer.byteLength(body) }).end(body);
      return;
    }
    app(req, res);
  });
  inFlight.set(server, pending);
  // Any other expectation: Node's own 417 has no body and keeps the connection.
  const expectationFailed = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const { headers, body } = ownProblem(
      417,
      'expectation-failed',
      'The Expect header asks for what this server does not do: only 100-continue is met.',
      req.url,
    );
    res.writeHead(417, { ...headers, 'Content-Length': Buffer.byteLength(body) }).end(body);
  };
  // Expect: 100-continue waits for the app's word (http/expect-continue.ts), not Node's. Node
  // takes any list naming 100-continue for it: one that also names another expectation is that
  // other's 417, not met halfway.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!onlyContinue(req.headers.expect)) return expectationFailed(req, res);
    holdContinue(req, res);
    server.emit('request', req, res);
  });
  // An empty list names no expectation: the request as any other.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) =>
    expectsNothing(req.headers.expect) ? server.emit('request', req, res) : expectationFailed(req, res),
  );
  server.on('clientError', answerClientError);
  // CONNECT (a tunnel) is no method of this API; Node would close the connection without a word.
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) =>
    writeProblem(socket, 501, 'not-implemented', 'CONNECT is not a method this server implements.'),
  );
  return server;
}

/**
 * Listens, or fails with one line naming the settings (`settings`): a busy port must not look
 * like a start.
 */
export function listen(
  server: http.Server,
  port: number,
  host: string,
  settings = 'HOST, PORT',
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${host}:${port} (${settings})`;
      const reason =
        error.code === 'EADDRINUSE'
          ? `${where} is already in use: is another instance running?`
          : error.code === 'EACCES'
            ? `no permission to listen on ${where}`
            : `cannot listen on ${where}: ${error.message}`;
      reject(new StartupError(reason));
    });
    server.listen(port, host, () => resolve());
  });
}

/**
 * Fails at once, with listen's one line, when host:port is taken: before a slow start (an
 * embedded database, migrations) that would only end in the same failure. Port 0 always passes.
 */
export async function ensurePortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  const probe = http.createServer();
  await listen(probe, port, host);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * Stops accepting connections and lets the requests in flight finish, for at most timeoutMs;
 * then cuts whatever is left. True when every request finished in time.
 */
export async function drain(server: http.Server, timeoutMs: number): Promise<boolean> {
  draining.add(server);
  // The responses of requests already running close their connection too, when they are sent.
  for (const res of inFlight.get(server) ?? []) if (!res.headersSent) res.setHeader('Connection', 'close');
  const closed = new Promise<boolean>((resolve) => server.close(() => resolve(true)));
  // A keep-alive connection whose last request just finished is idle: close it at once.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const finished = await Promise.race([closed, timedOut]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!finished) server.closeAllConnections();
  return finished;
}
