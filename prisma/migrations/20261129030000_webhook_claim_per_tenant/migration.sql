-- The claim, now bounding what it hands over per host and per tenant. The per-host limit alone
-- keyed on the URL's host[:port], so one tenant with webhooks on many ports or subdomains that
-- all hang could hold every slot of the process until they timed out. The caller passes what it
-- has in flight per host and per tenant, and the claim leaves out hosts and tenants that are full
-- and hands over no more than each one's free slots, oldest first, so a dispatcher never leases a
-- delivery it cannot send at once.
CREATE FUNCTION claim_webhook_deliveries(
  p_dispatcher text, p_limit integer, p_lease_ms integer,
  p_per_host integer, p_hosts text[], p_host_in_flight integer[],
  p_per_tenant integer, p_tenants uuid[], p_tenant_in_flight integer[]
)
RETURNS TABLE (
  id uuid, "tenantId" uuid, "fileId" uuid, "eventId" bigint, "eventType" text, url text, host text, "attemptCount" integer,
  "webhookSecret" text, "previousWebhookSecret" text, "previousWebhookSecretExpiresAt" timestamptz, event json
) LANGUAGE plpgsql ROWS 64 AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH host_load AS (
    SELECT * FROM unnest(p_hosts, p_host_in_flight) AS l(host, in_flight)),
  tenant_load AS (
    SELECT * FROM unnest(p_tenants, p_tenant_in_flight) AS l(tenant_id, in_flight)),
  candidates AS (
    SELECT d.id, d.host, d.tenant_id, d.next_attempt_at, d.sequence FROM webhook_delivery d
    WHERE ((d.state = 'PENDING' AND d.next_attempt_at <= now()) OR (d.state = 'SENDING' AND d.locked_until < now()))
      AND NOT EXISTS (SELECT 1 FROM host_load l WHERE l.host = d.host AND l.in_flight >= p_per_host)
      AND NOT EXISTS (SELECT 1 FROM tenant_load l WHERE l.tenant_id = d.tenant_id AND l.in_flight >= p_per_tenant)
      AND NOT EXISTS (
        SELECT 1 FROM webhook_delivery e
        WHERE e.file_id = d.file_id AND e.url = d.url AND e.id <> d.id AND e.state IN ('PENDING', 'SENDING')
          AND (e.sequence < d.sequence
               -- a later one in flight: an earlier one was redelivered meanwhile
               OR (e.state = 'SENDING' AND e.locked_until >= now())))
    ORDER BY d.next_attempt_at, d.sequence
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED),
  -- Each host's free slots first, then each tenant's among what is left.
  within_host AS (
    SELECT c.* FROM (
      SELECT c.*, row_number() OVER (PARTITION BY c.host ORDER BY c.next_attempt_at, c.sequence) + COALESCE(l.in_flight, 0) AS host_slot
      FROM candidates c LEFT JOIN host_load l ON l.host = c.host) c
    WHERE c.host_slot <= p_per_host),
  chosen AS (
    SELECT w.id FROM (
      SELECT w.id, row_number() OVER (PARTITION BY w.tenant_id ORDER BY w.next_attempt_at, w.sequence) + COALESCE(l.in_flight, 0) AS tenant_slot
      FROM within_host w LEFT JOIN tenant_load l ON l.tenant_id = w.tenant_id) w
    WHERE w.tenant_slot <= p_per_tenant),
  claimed AS (
    UPDATE webhook_delivery SET state = 'SENDING', locked_by = p_dispatcher,
           locked_until = now() + p_lease_ms * interval '1 millisecond', attempt_count = attempt_count + 1
    WHERE webhook_delivery.id IN (SELECT chosen.id FROM chosen)
    RETURNING *)
  SELECT c.id, c.tenant_id, c.file_id, c.event_id, c.event_type, c.url, c.host, c.attempt_count,
         t.webhook_secret, t.previous_webhook_secret, t.previous_webhook_secret_expires_at::timestamptz,
         json_build_object('fileId', e.file_id, 'tenantId', e.tenant_id, 'status', e.status, 'stage', e.stage,
                           'progress', e.progress, 'message', e.message, 'metadata', e.metadata, 'sequence', e.sequence,
                           'attempt', e.attempt, 'etaSeconds', e.eta_seconds, 'createdAt', e.created_at)
  FROM claimed c JOIN tenant t ON t.id = c.tenant_id JOIN file_status_event e ON e.id = c.event_id;
END $$;

-- The four-argument claim of the previous release, kept for its processes during a rolling deploy:
-- its busy hosts are full, every other host and tenant is unbounded, as they were.
CREATE OR REPLACE FUNCTION claim_webhook_deliveries(p_dispatcher text, p_limit integer, p_lease_ms integer, p_busy_hosts text[])
RETURNS TABLE (
  id uuid, "tenantId" uuid, "fileId" uuid, "eventId" bigint, "eventType" text, url text, host text, "attemptCount" integer,
  "webhookSecret" text, "previousWebhookSecret" text, "previousWebhookSecretExpiresAt" timestamptz, event json
) LANGUAGE sql ROWS 64 AS $$
  SELECT * FROM claim_webhook_deliveries(p_dispatcher, p_limit, p_lease_ms,
                                         p_limit, p_busy_hosts, array_fill(p_limit, ARRAY[cardinality(p_busy_hosts)]),
                                         p_limit, '{}'::uuid[], '{}'::integer[])
$$;
