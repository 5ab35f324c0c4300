import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, withSessionSettings, type Database } from '../../src/db/database.js';
import { createTestDatabase } from '../helpers/test-database.js';

const onPostgres = Boolean(process.env.TEST_DATABASE_URL);
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;

beforeAll(async () => {
  if (!onPostgres) return;
  database = await createTestDatabase();
  // A server whose sessions default to a time zone other than UTC, as many self-hosted ones do.
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${new URL(database.url!).pathname.slice(1)} SET timezone = 'America/New_York'`);
  await admin.end();
  db = await openDatabase({ dataDir: '/nonexistent', databaseUrl: database.url });
});
afterAll(async () => {
  if (!onPostgres) return;
  await db.close();
  await database.drop();
});

describe.runIf(onPostgres)('timestamps on a PostgreSQL server in another time zone', () => {
  it('are the same instants on the server as in the service, both ways', async () => {
    const sent = new Date('2026-06-01T12:00:00.123Z');
    const [row] = await db.prisma.$queryRaw<{ same: boolean; now: Date }[]>`
      SELECT ${sent}::timestamptz = '2026-06-01T12:00:00.123Z'::timestamptz AS same,
             now() AS now`;
    expect(row.same).toBe(true);
    // What the server stamps (every status change's updated_at) reads back as the same instant.
    expect(Math.abs(row.now.getTime() - Date.now())).toBeLessThan(60_000);
  });
});

describe('withSessionSettings', () => {
  it("adds the service's session settings to a URL's, after those it has", () => {
    const added = new URL(withSessionSettings('postgresql://u@db:5432/app?sslmode=require'));
    expect(added.searchParams.get('options')).toBe('-c TimeZone=UTC -c filestatus.bus=notify');
    expect(added.searchParams.get('sslmode')).toBe('require');
    const kept = new URL(withSessionSettings('postgresql://u@db/app?options=-c%20statement_timeout%3D5000'));
    expect(kept.searchParams.get('options')).toBe('-c TimeZone=UTC -c filestatus.bus=notify -c statement_timeout=5000');
  });
});

describe.runIf(onPostgres)("a session opened with a URL's own options", () => {
  it('runs in UTC and announces status events all the same', async () => {
    const url = new URL(database.url!);
    url.searchParams.set('options', '-c statement_timeout=5000');
    const own = await openDatabase({ dataDir: '/nonexistent', databaseUrl: url.toString() });
    try {
      const [row] = await own.prisma.$queryRaw<{ zone: string; bus: string; timeout: string }[]>`
        SELECT current_setting('TimeZone') AS zone, current_setting('filestatus.bus') AS bus, current_setting('statement_timeout') AS timeout`;
      expect(row).toEqual({ zone: 'UTC', bus: 'notify', timeout: '5s' });
    } finally {
      await own.close();
    }
  });
});

