-- webhook_delivery_tenant_state_queued_idx leads with (tenant_id, state) and holds the FAILED
-- range in the same order. CONCURRENTLY, alone in its migration, as its creation was.
DROP INDEX CONCURRENTLY IF EXISTS "webhook_delivery_failed_idx";
