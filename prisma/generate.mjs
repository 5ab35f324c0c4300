// `prisma generate` insists on a schema-engine binary it never runs, and downloading one fails
// on machines without access to Prisma's binary host: point it at any existing file instead.
import { spawnSync } from 'node:child_process';

const result = spawnSync('npx', ['prisma', 'generate'], {
  stdio: 'inherit',
  env: { PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, ...process.env },
});
process.exit(result.status ?? 1);
