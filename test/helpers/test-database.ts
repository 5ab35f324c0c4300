import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';

/**
 * With a server (TEST_DATABASE_URL by default), each caller gets a fresh database on it (dropped
 * by the returned cleanup); without one, undefined: the embedded default.
 */
export async function createTestDatabase(
  server = process.env.TEST_DATABASE_URL,
): Promise<{ url: string | undefined; drop(): Promise<void> }> {
  if (!server) return { url: undefined, drop: async () => {} };
  const name = `filestatus_test_${randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * A migrated database of the caller's own, in a temporary data directory: the embedded default,
 * or a fresh database on TEST_DATABASE_URL's server (`url`, for connections of its own). close()
 * removes it all.
 */
export async function openTestDatabase(name: string): Promise<{ db: Database; url: string | undefined; close(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const database = await createTestDatabase();
  const db = await openDatabase({ dataDir, databaseUrl: database.url });
  await applyMigrations(db);
  return {
    db,
    url: database.url,
    async close() {
      await db.close();
      await database.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
