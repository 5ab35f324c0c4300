import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { openTestDatabase } from '../helpers/test-database.js';

/**
 * The functions whose plans are cached on purpose (planning them cost more than running them)
 * say so themselves: the embedded session plans everything else for its parameters on every run
 * (src/db/pglite-queries.ts). CREATE OR REPLACE drops a function's settings unless it repeats
 * them, so a migration that rewrites one of these and forgets would leave it planned on every call.
 */
const PLAN_CACHED = ['record_status_event', 'record_status_events', 'record_webhook_attempts', 'queue_webhook_delivery'];

let opened: Awaited<ReturnType<typeof openTestDatabase>>;
let db: Database;

beforeAll(async () => {
  opened = await openTestDatabase('plan-cached-functions');
  db = opened.db;
});
afterAll(() => opened.close());

describe('functions planned once per connection', () => {
  it.each(PLAN_CACHED)('%s keeps plan_cache_mode = auto through every migration', async (name) => {
    const rows = await db.prisma.$queryRaw<{ config: string[] | null }[]>`
      SELECT proconfig AS config FROM pg_proc WHERE proname = ${name} AND pronamespace = 'public'::regnamespace`;
    expect(rows.length).toBeGreaterThan(0);
    for (const { config } of rows) expect(config).toContain('plan_cache_mode=auto');
  });

  // The claim is the other way round: planned for the outbox as it is on every call (migration claim_custom_plans).
  it('claim_webhook_deliveries keeps plan_cache_mode = force_custom_plan', async () => {
    const rows = await db.prisma.$queryRaw<{ config: string[] | null }[]>`
      SELECT proconfig AS config FROM pg_proc
      WHERE proname = 'claim_webhook_deliveries' AND pronamespace = 'public'::regnamespace AND pronargs = 9`;
    expect(rows).toHaveLength(1);
    expect(rows[0].config).toContain('plan_cache_mode=force_custom_plan');
  });
});
