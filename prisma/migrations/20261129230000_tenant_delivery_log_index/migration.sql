-- A tenant's deliveries, the latest queued first: the webhookDeliveries query pages through them
-- without reading other tenants' log. Every delivery written updates it (measured: see the commit).
-- CONCURRENTLY: a plain build over a log of 30 days would hold up every status change of a file
-- with a webhook while it runs. Alone in its migration, since it cannot run in a transaction.
CREATE INDEX CONCURRENTLY "webhook_delivery_tenant_queued_idx" ON "webhook_delivery" ("tenant_id", "created_at", "id");
