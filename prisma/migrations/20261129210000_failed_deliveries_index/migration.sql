-- A tenant's failed deliveries, by when they were queued: what redeliverFailedWebhooks re-queues
-- after a receiver's outage, without reading the whole delivery log. Partial, so that only a
-- delivery that fails for good touches it; the hot path (queued, sent, delivered) does not.
CREATE INDEX "webhook_delivery_failed_idx" ON "webhook_delivery" ("tenant_id", "created_at", "id") WHERE state = 'FAILED';
