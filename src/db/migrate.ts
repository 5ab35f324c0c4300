import type { Database } from './database.js';
import { createSchemaEngine, readMigrationList } from './schema-engine.js';

const noFilter = { externalTables: [], externalEnums: [] };

/** Applies the pending folders of prisma/migrations, as `prisma migrate deploy` would. */
export async function applyMigrations(db: Database): Promise<string[]> {
  const engine = await createSchemaEngine(db.adapterFactory);
  try {
    const { appliedMigrationNames } = await engine.applyMigrations({
      migrationsList: await readMigrationList(),
      filters: noFilter,
    });
    return appliedMigrationNames;
  } finally {
    engine.free();
  }
}

/** True when every migration folder has been applied: what /readyz reports. */
export async function migrationsApplied(db: Database): Promise<boolean> {
  const list = await readMigrationList();
  const rows = await db.prisma.$queryRaw<{ migration_name: string }[]>`
    SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
  const applied = new Set(rows.map((row) => row.migration_name));
  return list.migrationDirectories.every((dir) => applied.has(dir.path));
}
