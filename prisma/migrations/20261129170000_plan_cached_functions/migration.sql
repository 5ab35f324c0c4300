-- The embedded database now runs each statement text as a prepared statement
-- (src/db/pglite-queries.ts), and sets its session to plan_cache_mode = force_custom_plan so
-- that those statements are planned for their parameters on every run, as the unnamed statements
-- before them were: a generic plan made while a table is small scans the whole table once it is
-- large, until something invalidates it (see the claim's migration, claim_custom_plans).
-- That session setting would also reach the statements inside these functions, which are
-- planned once per connection on purpose (planning them cost more than running them: the
-- migrations record_webhook_attempts and record_status_event). They keep PostgreSQL's default.
-- Their statements read by primary key, or the outbox, which the embedded vacuum keeps analysed.
ALTER FUNCTION record_status_event(uuid, text, text, integer, text, jsonb, integer, text, integer)
  SET plan_cache_mode = auto;
ALTER FUNCTION record_status_events(uuid[], text[], text[], integer[], text[], jsonb[], integer[], text, integer)
  SET plan_cache_mode = auto;
ALTER FUNCTION record_webhook_attempts(text, uuid[], timestamptz[], text[], timestamptz[], text[], timestamptz[], integer[], integer[], text[], text[])
  SET plan_cache_mode = auto;
ALTER FUNCTION queue_webhook_delivery() SET plan_cache_mode = auto;
