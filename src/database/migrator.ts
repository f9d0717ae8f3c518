import { type Migration, Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from '../../db/migrations/index.js';
import type { Db } from './connection.js';
import { StartupError } from '../startup.js';

/**
 * With `progress`, a migration still running after a second says so, and then how long it took:
 * on a large database one that builds an index runs for a minute or more, and a command that says
 * nothing until the end looks hung. Quick ones (all of them on a new database) say nothing.
 */
export function createMigrator(db: Db, progress?: (line: string) => void): Migrator {
  const provided = progress
    ? Object.fromEntries(
        Object.entries(migrations).map(([name, m]) => [name, withProgress(name, m, progress)]),
      )
    : migrations;
  return new Migrator({ db, provider: { getMigrations: () => Promise.resolve(provided) } });
}

const ANNOUNCE_AFTER_MS = 1000;

export function withProgress(
  name: string,
  migration: Migration,
  progress: (line: string) => void,
): Migration {
  type Run = (db: Parameters<Migration['up']>[0]) => Promise<void>;
  const step =
    (direction: 'up' | 'down', run: Run): Run =>
    async (db) => {
      const started = performance.now();
      let announced = false;
      const timer = setTimeout(() => {
        announced = true;
        progress(`migration ${direction} ${name}: running ...`);
      }, ANNOUNCE_AFTER_MS);
      try {
        await run(db);
      } finally {
        clearTimeout(timer);
      }
      if (announced)
        progress(
          `migration ${direction} ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
    };
  return {
    up: step('up', (db) => migration.up(db)),
    ...(migration.down ? { down: step('down', (db) => migration.down!(db)) } : {}),
  };
}

/** Throws with the failing migration's name, so a bad deploy stops before serving. */
export function unwrap({ error, results }: MigrationResultSet): string[] {
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    const reason = error instanceof Error ? error.message : JSON.stringify(error);
    throw new StartupError(
      failed ? `migration ${failed.migrationName} failed: ${reason}` : `cannot run the migrations: ${reason}`,
      { cause: error },
    );
  }
  return (results ?? []).map((r) => `${r.direction === 'Up' ? 'up' : 'down'} ${r.migrationName}`);
}

export async function migrateToLatest(db: Db, progress?: (line: string) => void): Promise<string[]> {
  return unwrap(await createMigrator(db, progress).migrateToLatest());
}
