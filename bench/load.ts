// Load driver for `make bench`: autocannon in a child process, so that the load generator never
// shares a process or an event loop with the server under test (which may run in the caller).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST' | 'PATCH';
  /** `content-type: application/json` is added when there is a body and no content-type is given. */
  headers?: Record<string, string>;
  /**
   * The request body. For bodies that must differ per request (e.g. a unique email for every
   * POST /users), put the placeholder `[<id>]` in the body and set `idReplacement`: autocannon
   * replaces it with a fresh unique id in every request. (A body-producing function cannot cross
   * into the child process, hence no function form.)
   */
  body?: string;
  /** Replace every `[<id>]` in `body` with a unique id per request. */
  idReplacement?: boolean;
  /** A request unanswered this long counts as an error; default 10 (autocannon's). */
  timeoutSeconds?: number;
  /** Concurrent connections, each with one request in flight; default 32. */
  connections?: number;
  /** Length of the measured run; default 10. */
  durationSeconds?: number;
  /** A separate run before the measured one, whose results are discarded; default 2 (0: none). */
  warmupSeconds?: number;
}

export interface LoadResult {
  /** Successful (2xx) responses per second of the measured run. */
  requestsPerSecond: number;
  /** Latency percentiles of the 2xx responses, in milliseconds (NaN if there were none). */
  p50: number;
  p95: number;
  p99: number;
  /** Responses with a status outside 2xx. */
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
}

// CommonJS, run with `node -e`: argv[1] is autocannon's resolved path, argv[2] the JSON options.
// autocannon's own latency histogram holds whole milliseconds and has no p95, so the child keeps
// every 2xx response time (milliseconds, from hrtime) and computes the percentiles itself.
const CHILD = `
const autocannon = require(process.argv[1]);
const { warmup, ...opts } = JSON.parse(process.argv[2]);
const run = (duration, onResponse) => new Promise((resolve, reject) => {
  const instance = autocannon({ ...opts, duration }, (err, result) => (err ? reject(err) : resolve(result)));
  if (onResponse) instance.on('response', onResponse);
});
(async () => {
  if (warmup > 0) await run(warmup);
  const times = [];
  const result = await run(opts.duration, (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) times.push(ms);
  });
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.max(0, Math.ceil((p / 100) * times.length) - 1)] ?? null;
  process.stdout.write(JSON.stringify({
    requestsPerSecond: result['2xx'] / result.duration,
    p50: at(50), p95: at(95), p99: at(99),
    non2xx: result.non2xx,
    errors: result.errors,
  }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

/** Runs autocannon against one URL in a child process and returns what it measured. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const headers = { ...options.headers };
  if (options.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const childOptions = {
    url: options.url,
    method: options.method ?? 'GET',
    headers,
    body: options.body,
    idReplacement: options.idReplacement ?? false,
    connections: options.connections ?? 32,
    pipelining: 1,
    duration: options.durationSeconds ?? 10,
    warmup: options.warmupSeconds ?? 2,
    timeout: options.timeoutSeconds ?? 10,
  };
  const autocannonPath = createRequire(import.meta.url).resolve('autocannon');
  const child = spawn(process.execPath, ['-e', CHILD, autocannonPath, JSON.stringify(childOptions)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`autocannon child exited with ${code}: ${stderr.trim()}`);
  const raw = JSON.parse(stdout) as Record<keyof LoadResult, number | null>;
  const num = (v: number | null) => v ?? NaN;
  return {
    requestsPerSecond: num(raw.requestsPerSecond),
    p50: num(raw.p50),
    p95: num(raw.p95),
    p99: num(raw.p99),
    non2xx: num(raw.non2xx),
    errors: num(raw.errors),
  };
}

/** E.g. `4,512 req/s, p50 6.1 ms, p95 9.8 ms, p99 14.2 ms` (non-2xx and errors appended if any). */
export function formatLoad(result: LoadResult): string {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const parts = [
    `${Math.round(result.requestsPerSecond).toLocaleString('en-US')} req/s`,
    `p50 ${ms(result.p50)}`,
    `p95 ${ms(result.p95)}`,
    `p99 ${ms(result.p99)}`,
  ];
  if (result.non2xx > 0) parts.push(`${result.non2xx.toLocaleString('en-US')} non-2xx`);
  if (result.errors > 0) parts.push(`${result.errors.toLocaleString('en-US')} errors`);
  return parts.join(', ');
}
