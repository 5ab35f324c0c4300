import { defineConfig } from 'prisma/config';

// `prisma migrate deploy` with the normal CLI reads DATABASE_URL; this project itself
// migrates through the WebAssembly schema engine (src/db/migrate.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/postgres' },
});
