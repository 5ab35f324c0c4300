-- A tenant's deliveries by state, the latest queued first: webhookDeliveries reads one range of it
-- per state (src/webhooks/delivery-log-page.ts), and redeliverFailedWebhooks the FAILED range,
-- which webhook_delivery_failed_idx served until now (dropped in the next migration).
-- Unlike that partial index, every delivery written and each change of its state updates this
-- one. Measured on the embedded database in alternation with the release before (npm run bench
-- -- webhooks, twice each, 2026-11-29 23:28-23:40): 246 and 240 deliveries/s against 246 and 179,
-- backlog drain 461 and 570/s against 537 and 494, p99 12 ms against 13 and 28: within the noise.
-- CONCURRENTLY: a plain build over a log of 30 days would hold up every status change of a file
-- with a webhook while it runs. Alone in its migration, since it cannot run in a transaction.
CREATE INDEX CONCURRENTLY "webhook_delivery_tenant_state_queued_idx" ON "webhook_delivery" ("tenant_id", "state", "created_at", "id");
