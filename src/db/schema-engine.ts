import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import * as engineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const schemaPath = path.join(projectRoot, 'prisma/schema.prisma');
export const migrationsDir = path.join(projectRoot, 'prisma/migrations');

let loaded: Promise<typeof engineGlue> | undefined;

/**
 * The package's ESM entry imports its .wasm file directly, which Node 20 only allows behind
 * --experimental-wasm-modules; instantiating the file here keeps `npm start` flag-free.
 */
function loadEngine(): Promise<typeof engineGlue> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')), 'schema_engine_bg.wasm');
    const { instance } = await WebAssembly.instantiate(await fs.readFile(wasmPath), {
      './schema_engine_bg.js': engineGlue as unknown as WebAssembly.ModuleImports,
    });
    engineGlue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return engineGlue;
  })();
  return loaded;
}

/**
 * @prisma/adapter-pg runs a migration by splitting it at every ';', which cuts a function body (and
 * any comment with a ';') apart. PostgreSQL takes the whole script as one simple query, in one
 * implicit transaction, as Prisma's native engine sends it.
 */
function runWholeScripts(adapter: SqlDriverAdapter): SqlDriverAdapter {
  // Not in the adapter interface: the pg Pool that @prisma/adapter-pg runs on.
  const driver = (adapter as unknown as { underlyingDriver?: () => { query?: (sql: string) => Promise<unknown> } }).underlyingDriver?.();
  if (adapter.adapterName !== '@prisma/adapter-pg' || typeof driver?.query !== 'function') return adapter;
  const mapError = (adapter as unknown as { onError?: (error: unknown) => never }).onError?.bind(adapter);
  adapter.executeScript = async (script) => {
    try {
      await driver.query!(script);
    } catch (error) {
      if (mapError) mapError(error);
      throw error;
    }
  };
  return adapter;
}

export async function createSchemaEngine(factory: SqlMigrationAwareDriverAdapterFactory): Promise<SchemaEngine> {
  const adapterFactory: SqlMigrationAwareDriverAdapterFactory = {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => runWholeScripts(await factory.connect()),
    connectToShadowDb: async () => runWholeScripts(await factory.connectToShadowDb()),
  };
  const glue = await loadEngine();
  const datamodel = await fs.readFile(schemaPath, 'utf8');
  return glue.SchemaEngine.new(
    { datamodels: [[schemaPath, datamodel]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(adapterFactory),
  );
}

export async function readMigrationList(): Promise<MigrationList> {
  const names = (await fs.readdir(migrationsDir, { withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const lockPath = path.join(migrationsDir, 'migration_lock.toml');
  return {
    baseDir: migrationsDir,
    lockfile: { path: lockPath, content: await fs.readFile(lockPath, 'utf8').catch(() => null) },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(
      names.map(async (name) => {
        const file = path.join(migrationsDir, name, 'migration.sql');
        const content = await fs.readFile(file, 'utf8');
        return { path: name, migrationFile: { path: file, content: { tag: 'ok' as const, value: content } } };
      }),
    ),
  };
}
