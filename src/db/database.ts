import path from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
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

type QueryOptions = NonNullable<Parameters<PGlite['query']>[2]>;

/**
 * Two costs PGlite adds to every query on this thread, which the embedded service pays on every
 * status change:
 * - It passes its lock from one query to the next in microtasks: under a steady stream of
 *   queries no socket would be read until the stream ends (bench/webhooks.ts saw deliveries wait
 *   6 s behind status writes). Each query and transaction first lets pending I/O run.
 * - Given per-query parsers, as the Prisma adapter passes on every call, it copies its whole
 *   parser table (one entry per type and array type) into a new object for each result: a tenth
 *   of a millisecond per query in the webhook bench's CPU profile. The adapter's parsers, the
 *   same object on every call, are merged into the instance's table once instead. PGlite fills
 *   that table with its array types while it starts, so the merge comes after and wins, as the
 *   per-query ones did.
 */
function adaptQueriesToThisProcess(pglite: PGlite): void {
  const query = pglite.query.bind(pglite);
  const transaction = pglite.transaction.bind(pglite);
  const merged = new WeakSet<object>();
  const withoutParsers = (options: QueryOptions | undefined) => {
    if (!options?.parsers) return options;
    if (!merged.has(options.parsers)) {
      Object.assign(pglite.parsers, options.parsers);
      merged.add(options.parsers);
    }
    return { ...options, parsers: undefined };
  };
  pglite.query = (async (sql: string, params?: unknown[], options?: QueryOptions) => {
    await setImmediate();
    return query(sql, params, withoutParsers(options));
  }) as typeof pglite.query;
  pglite.transaction = (async <T>(callback: (tx: Transaction) => Promise<T>) => {
    await setImmediate();
    return transaction((tx) => {
      const txQuery = tx.query.bind(tx);
      tx.query = ((sql: string, params?: unknown[], options?: QueryOptions) => txQuery(sql, params, withoutParsers(options))) as Transaction['query'];
      return callback(tx);
    });
  }) as typeof pglite.transaction;
}

export async function openDatabase({ dataDir, databaseUrl }: DatabaseOptions): Promise<Database> {
  if (databaseUrl) {
    // Timestamps go to and from the server as UTC wall times: a session in any other time zone
    // would read them hours off (the adapter sends and reads them without an offset).
    const adapterFactory = new PrismaPg({ connectionString: databaseUrl, max: 10, options: '-c TimeZone=UTC' });
    const prisma = new PrismaClient({ adapter: adapterFactory });
    return { prisma, kind: 'postgres', adapterFactory, close: () => prisma.$disconnect() };
  }
  const unlock = lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create(path.join(dataDir, 'pgdata'));
    adaptQueriesToThisProcess(pglite);
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
