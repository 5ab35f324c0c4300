-- The claim plans its statements on every call, from the outbox as it is then. By default
-- PL/pgSQL keeps a generic plan after five calls, costed from the table's statistics of that
-- moment, and the embedded database has no autovacuum to refresh them: its vacuum timer
-- (embedded-vacuum.ts) found the outbox empty, the plan kept from then scanned the whole table for
-- every due delivery, and a burst of 5,000 due deliveries took 16 s a claim, with the process
-- blocked all along (the database runs on its thread). Planned for the table as it is, the same
-- claim takes 20-30 ms. The cost is the planning, on every claim.
ALTER FUNCTION claim_webhook_deliveries(text, integer, integer, integer, text[], integer[], integer, uuid[], integer[])
  SET plan_cache_mode = force_custom_plan;
