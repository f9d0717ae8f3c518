// The HTTP server around the Express app. Some requests never reach Express: headers over the
// size limit, malformed framing (bad chunked bodies, Content-Length with Transfer-Encoding), an
// unknown method, a client too slow to send its headers. Node answers those with a bare status
// line; this answers them with problem+json too, while nothing of a response has been sent yet.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';
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
  const [status, type, detail] = classify(error.code);
  // An id of its own, as every response carries one: the request's headers were not read.
  const requestId = randomUUID();
  const body = JSON.stringify({ ...problemBody(status, type, detail), request_id: requestId });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `X-Request-Id: ${requestId}\r\n` +
      Object.entries(SECURITY_HEADERS)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

const draining = new WeakSet<http.Server>();
/** Each server's responses not yet sent: told to close their connection when draining starts. */
const inFlight = new WeakMap<http.Server, Set<http.ServerResponse>>();

export function createHttpServer(app: Express): http.Server {
  const pending = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    // While draining, every response closes its connection: keep-alive clients reconnect to
    // another instance instead of sending more requests here.
    if (draining.has(server)) res.setHeader('Connection', 'close');
    else {
      pending.add(res);
      res.once('close', () => pending.delete(res));
    }
    app(req, res);
  });
  inFlight.set(server, pending);
  server.on('clientError', answerClientError);
  return server;
}

/** Listens, or fails with one line naming the setting: a busy port must not look like a start. */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${host}:${port} (HOST, PORT)`;
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
