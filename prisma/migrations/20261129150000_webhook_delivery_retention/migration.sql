-- Settled deliveries by age, for the delivery log's retention sweep (src/webhooks/delivery-log-retention.ts):
-- it deletes the oldest ones in small batches, and without this would read every delivery ever made
-- to find them. Open deliveries are never swept, so they are not in it.
-- CONCURRENTLY: the log has grown without bound until now, and a plain build would hold up, for as
-- long as it runs, every status change of a file with a webhook (each inserts into this table),
-- the previous release's too during a rolling deploy. Alone in its migration, since it cannot run
-- in a transaction.
CREATE INDEX CONCURRENTLY "webhook_delivery_settled_idx" ON "webhook_delivery" ("created_at") WHERE state IN ('DELIVERED', 'FAILED', 'DISCARDED');
