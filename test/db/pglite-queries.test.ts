import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adaptPGliteQueries } from '../../src/db/pglite-queries.js';

// The embedded database's queries go through prepared statements: the first test compares them
// with what PGlite's own query() answers; the others check the cases where a prepared statement
// could go stale, leak, or break a transaction. Each test that writes has a table of its own.
describe('PGlite queries as prepared statements', () => {
  let pglite: PGlite;
  let plain: PGlite;

  const preparedStatements = async () =>
    (await pglite.exec('SELECT statement FROM pg_prepared_statements'))[0].rows.map((row) => (row as { statement: string }).statement);

  beforeAll(async () => {
    [pglite, plain] = await Promise.all([PGlite.create(), PGlite.create()]);
    for (const db of [pglite, plain]) {
      await db.exec(`
        CREATE TABLE item (id uuid PRIMARY KEY, name text NOT NULL, tags text[], doc jsonb, big bigint, at timestamptz(3), n integer UNIQUE);
        INSERT INTO item VALUES ('6f1c1d2e-1111-4a4a-8b8b-000000000001', 'one', ARRAY['a', 'b'], '{"k": [1, 2]}', 9007199254740993, '2026-11-29T10:00:00.123Z', 1);`);
    }
    await adaptPGliteQueries(pglite);
  });
  afterAll(async () => {
    await pglite?.close();
    await plain?.close();
  });

  it('answers as PGlite does: rows, fields, types, nulls and affected rows, in both row modes', async () => {
    const select = 'SELECT id, name, tags, doc, big, at, n, $1::text AS echoed, $2::int AS absent FROM item WHERE n = $3';
    const insert = `INSERT INTO item (id, name, tags, doc, n) VALUES ($1, $2, $3, $4, $5)`;
    const insertParams = ['6f1c1d2e-1111-4a4a-8b8b-000000000002', 'two', ['x', 'y z'], JSON.stringify({ nested: { ok: true } }), 2];
    for (const rowMode of ['array', 'object'] as const) {
      for (let run = 0; run < 2; run++) {
        expect(await pglite.query(select, ['hi', null, 1], { rowMode })).toEqual(await plain.query(select, ['hi', null, 1], { rowMode }));
      }
    }
    const inserted = await pglite.query(insert, insertParams);
    expect(inserted).toEqual(await plain.query(insert, insertParams));
    expect(inserted.affectedRows).toBe(1);
    const update = 'UPDATE item SET name = name || $1 WHERE n >= $2';
    expect(await pglite.query(update, ['!', 1])).toEqual(await plain.query(update, ['!', 1]));
    const all = 'SELECT * FROM item ORDER BY n';
    expect((await pglite.query(all)).rows).toHaveLength(2);
    expect(await pglite.query(all)).toEqual(await plain.query(all));
  });

  it('prepares each text once, whatever the parameters', async () => {
    const before = (await preparedStatements()).length;
    for (let n = 0; n < 20; n++) await pglite.query('SELECT $1::int + 1 AS next', [n]);
    await pglite.query('SELECT name FROM item WHERE n = $1', [1]);
    expect((await preparedStatements()).length).toBe(before + 2);
  });

  it('reports a failing statement with its SQLSTATE, and the statement and the session go on working', async () => {
    await pglite.exec('CREATE TABLE unique_n (id uuid PRIMARY KEY, n integer UNIQUE)');
    const insert = 'INSERT INTO unique_n (id, n) VALUES ($1, $2)';
    await pglite.query(insert, ['6f1c1d2e-1111-4a4a-8b8b-000000000001', 1]);
    await expect(pglite.query(insert, ['6f1c1d2e-1111-4a4a-8b8b-000000000002', 1])).rejects.toMatchObject({ code: '23505' });
    await expect(pglite.query(insert, ['not a uuid', 5])).rejects.toMatchObject({ code: '22P02' });
    await expect(pglite.query('SELEC nonsense')).rejects.toMatchObject({ code: '42601' });
    await expect(pglite.query('SELECT missing FROM unique_n')).rejects.toMatchObject({ code: '42703' });
    await pglite.query(insert, ['6f1c1d2e-1111-4a4a-8b8b-000000000003', 3]);
    expect((await pglite.query<{ n: number }>('SELECT n FROM unique_n ORDER BY n')).rows).toEqual([{ n: 1 }, { n: 3 }]);
    expect(pglite.isInTransaction()).toBe(false);
  });

  it('keeps a transaction its own: what it wrote is gone after a rollback, and other queries wait for it', async () => {
    await pglite.exec('CREATE TABLE ledger (n integer)');
    const count = 'SELECT count(*)::int AS count FROM ledger';
    const seen: string[] = [];
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let wrote = () => {};
    const written = new Promise<void>((resolve) => (wrote = resolve));
    const transaction = pglite.transaction(async (tx) => {
      await tx.query('INSERT INTO ledger VALUES ($1)', [1]);
      seen.push(`inside: ${(await tx.query<{ count: number }>(count)).rows[0].count}`);
      wrote();
      await held;
      await tx.rollback();
    });
    await written;
    const outside = pglite.query<{ count: number }>(count).then((result) => seen.push(`outside: ${result.rows[0].count}`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual(['inside: 1']);
    release();
    await Promise.all([transaction, outside]);
    expect(seen).toEqual(['inside: 1', 'outside: 0']);
  });

  it('refuses a query on a transaction that has ended', async () => {
    let ended: { query: PGlite['query'] } | undefined;
    await pglite.transaction(async (tx) => {
      ended = tx;
    });
    await expect(ended!.query('SELECT 1')).rejects.toThrow('Transaction is closed');
  });

  it('prepares a statement anew when a table it reads changes its columns', async () => {
    await pglite.exec('CREATE TABLE shape (n integer); INSERT INTO shape VALUES (1)');
    const all = 'SELECT * FROM shape WHERE n = $1';
    expect((await pglite.query(all, [1])).fields).toHaveLength(1);
    await pglite.exec(`ALTER TABLE shape ADD COLUMN extra text DEFAULT 'added'`);
    const after = await pglite.query<{ extra: string }>(all, [1]);
    expect(after.fields).toHaveLength(2);
    expect(after.rows[0].extra).toBe('added');
    // Inside a transaction the stale statement fails it; the next use is prepared anew.
    await pglite.exec('ALTER TABLE shape DROP COLUMN extra');
    await expect(pglite.transaction((tx) => tx.query(all, [1]))).rejects.toThrow('cached plan must not change result type');
    expect((await pglite.query(all, [1])).fields).toHaveLength(1);
  });

  it('plans each run for its parameters, so that a plan made while a table was small does not outlive its growth', async () => {
    await pglite.exec(`CREATE TABLE grows (file_id uuid, n integer); CREATE INDEX ON grows (file_id);
      INSERT INTO grows SELECT gen_random_uuid(), 1 FROM generate_series(1, 3)`);
    await pglite.exec('VACUUM grows');
    const byFile = 'SELECT n FROM grows WHERE file_id = $1';
    const fileId = '6f1c1d2e-1111-4a4a-8b8b-00000000000a';
    for (let run = 0; run < 10; run++) await pglite.query(byFile, [fileId]);
    const plans = (await pglite.query<{ generic: number; custom: number }>(
      'SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE statement = $1',
      [byFile],
    )).rows;
    expect(plans).toEqual([{ generic: 0, custom: 10 }]);
  });

  it('keeps at most 256 statements prepared, closing the least recently used', async () => {
    const kept = 'SELECT $1::int AS kept';
    await pglite.query(kept, [0]);
    for (let n = 0; n < 300; n++) {
      await pglite.query(`SELECT $1::int + ${n} AS shifted`, [1]);
      if (n % 100 === 0) await pglite.query(kept, [n]);
    }
    const names = await preparedStatements();
    expect(names.length).toBeLessThanOrEqual(256);
    expect(names).not.toContain('SELECT $1::int + 0 AS shifted');
    expect(names).toContain('SELECT $1::int + 299 AS shifted');
    expect(names).toContain(kept);
    // An evicted text is prepared again when it comes back.
    expect((await pglite.query<{ shifted: number }>('SELECT $1::int + 0 AS shifted', [41])).rows).toEqual([{ shifted: 41 }]);
  });
});
