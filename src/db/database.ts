import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';
import { adaptPGliteQueries } from './pglite-queries.js';

export type { PrismaClient };

export interface Database {
  prisma: PrismaClient;
  /** `embedded` is PGlite in this process; `postgres` is a server shared by any number of processes. */
  kind: 'embedded' | 'postgres';
  adapterFactory: SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  dataDir: string;
  databaseUrl: string | undefined;
}

export async function openDatabase({ dataDir, databaseUrl }: DatabaseOptions): Promise<Database> {
  if (databaseUrl) {
    // Timestamps go to and from the server as UTC wall times: a session in any other time zone
    // would read them hours off (the adapter sends and reads them without an offset).
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, options: '-c TimeZone=UTC' });
    // Each status event this session records is announced on the bus by its own transaction
    // (migration status_events_announced_at_commit). Set on every new connection rather than in
    // `options`, which an `options` parameter in DATABASE_URL would replace; queued ahead of the
    // connection's first query, so it holds before it.
    pool.on('connect', (client) => {
      client.query("SET filestatus.bus = 'notify'").catch((error: unknown) => client.emit('error', error));
    });
    const adapterFactory = new PrismaPg(pool, { disposeExternalPool: true });
    const prisma = new PrismaClient({ adapter: adapterFactory });
    return { prisma, kind: 'postgres', adapterFactory, close: () => prisma.$disconnect() };
  }
  const unlock = lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create(path.join(dataDir, 'pgdata'));
    await adaptPGliteQueries(pglite);
    const adapterFactory = new PrismaPGlite(pglite);
    const prisma = new PrismaClient({ adapter: adapterFactory });
    return {
      prisma,
      kind: 'embedded',
      adapterFactory,
      async close() {
        await prisma.$disconnect();
        await pglite.close();
        unlock();
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}
