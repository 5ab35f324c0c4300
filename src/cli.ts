/**
 * Administration commands.
 *   npm run cli -- keys create --tenant NAME   creates an API key; the key is the last line printed
 *   npm run cli -- keys list [--tenant NAME]   lists keys by id, tenant and creation time
 *   npm run cli -- keys revoke ID_OR_KEY       deletes a key, named by its id or by the key itself
 */
import { parseArgs } from 'node:util';
import { createApiKey, listApiKeys, revokeApiKey } from './auth/api-keys.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { openDatabase, type PrismaClient } from './db/database.js';
import { applyMigrations } from './db/migrate.js';

const USAGE = [
  'usage: npm run cli -- keys create --tenant NAME',
  '       npm run cli -- keys list [--tenant NAME]',
  '       npm run cli -- keys revoke ID_OR_KEY',
].join('\n');

type Command = (prisma: PrismaClient) => Promise<number>;

/** The command the arguments name, or null when they name none. */
function commandOf(argv: string[]): Command | null {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { tenant: { type: 'string' } } });
  const tenant = values.tenant?.trim();
  const [group, verb, ...rest] = positionals;
  if (group !== 'keys') return null;
  if (verb === 'create' && tenant && rest.length === 0) {
    return async (prisma) => {
      const { key, id } = await createApiKey(prisma, tenant);
      console.log(`Created the API key ${id} for tenant "${tenant}". It is shown only this once:`);
      console.log(key);
      return 0;
    };
  }
  if (verb === 'list' && rest.length === 0 && (values.tenant === undefined || tenant)) {
    return async (prisma) => {
      for (const key of await listApiKeys(prisma, tenant)) console.log(`${key.id}  ${key.createdAt.toISOString()}  ${key.tenant}`);
      return 0;
    };
  }
  if (verb === 'revoke' && rest.length === 1 && values.tenant === undefined) {
    return async (prisma) => {
      const revoked = await revokeApiKey(prisma, rest[0]);
      if (!revoked) {
        console.error('No such API key: give the id that `keys list` prints, or the key itself.');
        return 1;
      }
      console.log(`Revoked the API key ${revoked.id} of tenant "${revoked.tenant}". Running servers refuse it within API_KEY_TRUST_MS.`);
      return 0;
    };
  }
  return null;
}

async function main(argv: string[]): Promise<number> {
  const command = commandOf(argv);
  if (!command) {
    console.error(USAGE);
    return 2;
  }
  const db = await openDatabase(loadConfig());
  try {
    await applyMigrations(db);
    return await command(db.prisma);
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
