-- Settled deliveries by age, for the delivery log's retention sweep (src/webhooks/delivery-log-retention.ts):
-- it deletes the oldest ones in small batches, and without this would read every delivery ever made
-- to find them. Open deliveries are never swept, so they are not in it.
CREATE INDEX "webhook_delivery_settled_idx" ON "webhook_delivery" ("created_at") WHERE state IN ('DELIVERED', 'FAILED', 'DISCARDED');
