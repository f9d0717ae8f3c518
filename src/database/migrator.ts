import { Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from '../../db/migrations/index.js';
import type { Db } from './connection.js';
import { StartupError } from '../startup.js';

export function createMigrator(db: Db): Migrator {
  return new Migrator({ db, provider: { getMigrations: () => Promise.resolve(migrations) } });
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

export async function migrateToLatest(db: Db): Promise<string[]> {
  return unwrap(await createMigrator(db).migrateToLatest());
}
