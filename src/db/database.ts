import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
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

/**
 * DATABASE_URL with the settings every session of the service needs added to its `options`
 * parameter, after any it has (a `-c` given there for the same setting wins):
 * - TimeZone=UTC: timestamps go to and from the server as UTC wall times; a session in another
 *   time zone would read them hours off (the adapter sends and reads them without an offset).
 * - filestatus.bus=notify: each status event the session records is announced on the bus by its
 *   own transaction (migration status_events_announced_at_commit).
 * In the URL rather than beside it: pg lets a URL's `options` replace a separate one whole.
 */
export function withSessionSettings(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const theirs = url.searchParams.get('options');
  url.searchParams.set('options', ['-c TimeZone=UTC -c filestatus.bus=notify', theirs].filter(Boolean).join(' '));
  return url.toString();
}

export async function openDatabase({ dataDir, databaseUrl }: DatabaseOptions): Promise<Database> {
  if (databaseUrl) {
    const adapterFactory = new PrismaPg({ connectionString: withSessionSettings(databaseUrl), max: 10 });
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
