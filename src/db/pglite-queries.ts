import { setImmediate } from 'node:timers/promises';
import { parse, protocol, type PGlite, type QueryOptions, type Results, type Transaction } from '@electric-sql/pglite';

type BackendMessage = Awaited<ReturnType<PGlite['execProtocolStream']>>[number];

interface Statement {
  name: string;
  /** The parameters' types as the database inferred them, which choose how each value is written. */
  paramTypes: number[];
  /** The result's columns; null for a statement that returns no rows. */
  rowDescription: BackendMessage | null;
}

/**
 * Distinct statements kept prepared. Prisma writes one text per query shape, so a service uses a
 * few dozen; the bound only matters for texts that vary (an IN list's length), which come and go.
 */
const MAX_STATEMENTS = 256;

/** PostgreSQL's error when a table that a prepared statement reads has changed its columns. */
const PLAN_CHANGED_RESULT_TYPE = 'cached plan must not change result type';

/** Protocol messages as one buffer: PostgreSQL reads them in one call. */
const joinMessages = (parts: Uint8Array[]) => {
  const joined = new Uint8Array(parts.reduce((length, part) => length + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
};

/**
 * Each statement text prepared once, by name, and then run with one call into PostgreSQL.
 *
 * PGlite's own query() parses and plans its statement anew on every call, and makes six calls
 * into PostgreSQL for it (parse, describe, bind, describe, execute, sync), each awaited. On the
 * embedded database that was most of what a status change cost: for a file without a webhook,
 * 598 µs through query() against 321 µs for the same change as a prepared statement (scratch
 * timing of record_status_event, 2026-11-29), the function's own work being about 140 µs of
 * either.
 */
class PreparedStatements {
  private readonly statements = new Map<string, Statement>();
  /** Forgotten, to be closed in the database with the next statement prepared. */
  private toClose: string[] = [];
  private nextId = 0;

  constructor(private readonly pglite: PGlite) {}

  /** Under PGlite's query lock; the caller holds its transaction lock, or is inside a transaction. */
  run<T>(sql: string, params: unknown[], options: QueryOptions | undefined, inTransaction: boolean): Promise<Results<T>> {
    return this.pglite._runExclusiveQuery(async () => {
      try {
        return await this.execute<T>(sql, params, options, inTransaction);
      } catch (error) {
        if ((error as Error).message !== PLAN_CHANGED_RESULT_TYPE) throw error;
        // A table it reads changed its columns since it was prepared (a migration): prepared anew.
        // Outside a transaction the failed run changed nothing, and runs again; inside one, the
        // transaction has failed.
        this.forget(sql);
        if (inTransaction) throw error;
        return this.execute<T>(sql, params, options, inTransaction);
      }
    });
  }

  private async execute<T>(sql: string, params: unknown[], options: QueryOptions | undefined, inTransaction: boolean): Promise<Results<T>> {
    const statement = this.recall(sql) ?? (await this.prepare(sql));
    const values = params.map((param, index) => this.serialize(param, statement.paramTypes[index]));
    const messages = await this.pglite.execProtocolStream(
      joinMessages([protocol.serialize.bind({ statement: statement.name, values }), protocol.serialize.execute({}), protocol.serialize.sync()]),
      { syncToFs: false },
    );
    if (!inTransaction) await this.pglite.syncToFs();
    const described = statement.rowDescription ? [statement.rowDescription, ...messages] : messages;
    return parse.parseResults(described, this.pglite.parsers, options)[0] as Results<T>;
  }

  /** The statement prepared for `sql`, now the most recently used. */
  private recall(sql: string): Statement | undefined {
    const statement = this.statements.get(sql);
    if (statement) {
      this.statements.delete(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private async prepare(sql: string): Promise<Statement> {
    if (this.statements.size >= MAX_STATEMENTS) this.forget(this.statements.keys().next().value as string);
    const name = `filestatus_${this.nextId++}`;
    const closing = this.toClose.splice(0);
    const messages = await this.pglite.execProtocolStream(
      joinMessages([
        ...closing.map((closed) => protocol.serialize.close({ type: 'S', name: closed })),
        protocol.serialize.parse({ name, text: sql }),
        protocol.serialize.describe({ type: 'S', name }),
        protocol.serialize.sync(),
      ]),
      { syncToFs: false },
    );
    const statement = {
      name,
      paramTypes: parse.parseDescribeStatementResults(messages),
      rowDescription: messages.find((message) => message.name === 'rowDescription') ?? null,
    };
    this.statements.set(sql, statement);
    return statement;
  }

  private forget(sql: string): void {
    const statement = this.statements.get(sql);
    if (!statement) return;
    this.statements.delete(sql);
    this.toClose.push(statement.name);
  }

  /** As PGlite's query() writes a parameter: by the serializer of the type the database inferred for it. */
  private serialize(param: unknown, type: number | undefined): string | null {
    if (param === null || param === undefined) return null;
    const serializer = type === undefined ? undefined : this.pglite.serializers[type];
    return serializer ? serializer(param) : String(param);
  }
}

/**
 * Adapts PGlite's queries to a service that runs it on its own thread, under a steady stream of
 * statements:
 * - Statements are prepared once and run by name (PreparedStatements), and still planned for
 *   their parameters on every run, as PGlite's unnamed statements were: PostgreSQL would
 *   otherwise settle on a generic plan after five runs, and one made while a table is small
 *   scans the whole table once it is large, until something invalidates it. The session's
 *   setting reaches the statements inside functions too; those that are planned once on purpose
 *   say so themselves (migration plan_cached_functions).
 * - PGlite passes its lock from one query to the next in microtasks: under a steady stream of
 *   queries no socket would be read until the stream ends (bench/webhooks.ts saw deliveries wait
 *   6 s behind status writes). Each query and transaction first lets pending I/O run.
 * - Given per-query parsers, as the Prisma adapter passes on every call, PGlite copies its whole
 *   parser table (one entry per type and array type) into a new object for each result: a tenth
 *   of a millisecond per query in the webhook bench's CPU profile. The adapter's parsers, the
 *   same object on every call, are merged into the instance's table once instead. PGlite fills
 *   that table with its array types while it starts, so the merge comes after and wins, as the
 *   per-query ones did.
 */
export async function adaptPGliteQueries(pglite: PGlite): Promise<void> {
  await pglite.exec('SET plan_cache_mode = force_custom_plan');
  const statements = new PreparedStatements(pglite);
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
  pglite.query = (async <T>(sql: string, params: unknown[] = [], options?: QueryOptions) => {
    await setImmediate();
    return pglite._runExclusiveTransaction(() => statements.run<T>(sql, params, withoutParsers(options), false));
  }) as typeof pglite.query;
  pglite.transaction = (async <T>(callback: (tx: Transaction) => Promise<T>) => {
    await setImmediate();
    return transaction((tx) => {
      tx.query = (async <R>(sql: string, params: unknown[] = [], options?: QueryOptions) => {
        if (tx.closed) throw new Error('Transaction is closed');
        return statements.run<R>(sql, params, withoutParsers(options), true);
      }) as Transaction['query'];
      return callback(tx);
    });
  }) as typeof pglite.transaction;
}
