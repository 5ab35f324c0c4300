import path from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';

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
 * PGlite runs every query on this thread, and passes its lock from one query to the next in
 * microtasks: under a steady stream of queries no socket would be read until the stream ends
 * (bench/webhooks.ts saw deliveries wait 6 s behind status writes). Each query and transaction
 * first lets pending I/O run.
 */
function yieldToIoBeforeQueries(pglite: PGlite): void {
  const query = pglite.query.bind(pglite);
  const transaction = pglite.transaction.bind(pglite);
  pglite.query = (async (...args: Parameters<typeof query>) => {
    await setImmediate();
    return query(...args);
  }) as typeof pglite.query;
  pglite.transaction = (async (...args: Parameters<typeof transaction>) => {
    await setImmediate();
    return transaction(...args);
  }) as typeof pglite.transaction;
}

export async function openDatabase({ dataDir, databaseUrl }: DatabaseOptions): Promise<Database> {
  if (databaseUrl) {
    const adapterFactory = new PrismaPg({ connectionString: databaseUrl, max: 10 });
    const prisma = new PrismaClient({ adapter: adapterFactory });
    return { prisma, kind: 'postgres', adapterFactory, close: () => prisma.$disconnect() };
  }
  const unlock = lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create(path.join(dataDir, 'pgdata'));
    yieldToIoBeforeQueries(pglite);
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
