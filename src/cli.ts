/**
 * Administration commands.
 *   npm run cli -- keys create --tenant NAME   creates an API key; the key is the last line printed
 */
import { parseArgs } from 'node:util';
import { createApiKey } from './auth/api-keys.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { openDatabase } from './db/database.js';
import { applyMigrations } from './db/migrate.js';

const USAGE = 'usage: npm run cli -- keys create --tenant NAME';

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { tenant: { type: 'string' } } });
  if (positionals[0] !== 'keys' || positionals[1] !== 'create' || !values.tenant?.trim()) {
    console.error(USAGE);
    return 2;
  }
  const db = await openDatabase(loadConfig());
  try {
    await applyMigrations(db);
    const { key } = await createApiKey(db.prisma, values.tenant.trim());
    console.log(`Created an API key for tenant "${values.tenant.trim()}". It is shown only this once:`);
    console.log(key);
    return 0;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof DataDirLockedError || error instanceof ConfigError) console.error(error.message);
    else console.error(error);
    process.exit(1);
  },
);
