/**
 * A multipart `map` names places in the request's own `operations`. graphql-upload-minimal walked
 * a path through inherited properties too (patches/graphql-upload-minimal+1.6.4.patch), so
 * `variables.hasOwnProperty.call` replaced a function every object of the process shares, and
 * every later request of every tenant failed until a restart. The server runs in a process of its
 * own here: on a regression, the damage stays out of the test runner.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { openDatabase } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { graphql, uploadFile } from '../helpers/graphql-client.js';
import { multipartBody, rawRequest, UPLOAD_OPERATIONS } from '../helpers/raw-multipart.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { createTestDatabase } from '../helpers/test-database.js';

let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let server: ServerProcess;
let mallory: string;
let alice: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'map-paths-'));
  database = await createTestDatabase();
  const db = await openDatabase({ dataDir, databaseUrl: database.url });
  try {
    await applyMigrations(db);
    mallory = `Bearer ${(await createApiKey(db.prisma, 'mallory')).key}`;
    alice = `Bearer ${(await createApiKey(db.prisma, 'alice')).key}`;
  } finally {
    await db.close();
  }
  server = await spawnServer({ DATA_DIR: dataDir, ...(database.url ? { DATABASE_URL: database.url } : {}) });
});

afterAll(async () => {
  server?.child.kill('SIGKILL');
  await server?.exited;
  await database.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const HOSTILE_PATHS = [
  'variables.hasOwnProperty.call',
  'variables.toString.call',
  'variables.valueOf.x',
  'variables.missing.x',
  'query.length',
  'variables.__proto__.x',
  'variables.constructor.prototype.x',
  'variables..file',
];

describe('multipart map paths', () => {
  it.each(HOSTILE_PATHS)('refuses %s with BAD_REQUEST, and every tenant is served after it', async (hostile) => {
    const boundary = 'map-path-boundary';
    const answer = await rawRequest(
      server.url,
      multipartBody(boundary, [
        { name: 'operations', value: UPLOAD_OPERATIONS },
        { name: 'map', value: JSON.stringify({ 0: ['variables.file', hostile] }) },
        { name: '0', value: 'hello', filename: 'a.txt' },
      ]),
      { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: mallory, 'x-graphql-yoga-csrf': '1' },
    );
    expect(answer).not.toBe('aborted');
    const { status, body } = answer as { status: number; body: string };
    expect(status).toBe(400);
    expect(JSON.parse(body).errors[0]).toMatchObject({ extensions: { code: 'BAD_REQUEST' } });

    const query = await graphql(server.url, alice, '{ files(first: 1) { edges { node { id } } } }');
    expect(query.body.errors).toBeUndefined();
    const upload = await uploadFile(server.url, alice, 'still served');
    expect(upload.body.errors).toBeUndefined();
    expect(upload.body.data.uploadFile.file.id).toBeTruthy();
  });
});
