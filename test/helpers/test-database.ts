import { randomUUID } from 'node:crypto';
import pg from 'pg';

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
