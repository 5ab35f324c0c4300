-- The claim, now bounding what it hands over per host and per tenant. The per-host limit alone
-- keyed on the URL's host[:port], so one tenant with webhooks on many ports or subdomains that
-- all hang could hold every slot of the process until they timed out. The caller passes what it
-- has in flight per host and per tenant; the claim leaves out hosts and tenants that are full and
-- hands over no more than each one's free slots, oldest first, so a dispatcher never leases a
-- delivery it cannot send at once.
-- It claims in rounds: a round looks at the oldest due deliveries, as many as there are slots
-- left, and takes what the limits allow. When a host or a tenant had more than its share among
-- them, the next round leaves it out and looks further, so one tenant's backlog ahead of the
-- others cannot keep their deliveries waiting while slots are free.
-- Each delivery comes back with its lease's end, which the attempt's record must match: a record
-- written again after a lost connection then cannot land on a later lease of the same delivery.
CREATE FUNCTION claim_webhook_deliveries(
  p_dispatcher text, p_limit integer, p_lease_ms integer,
  p_per_host integer, p_hosts text[], p_host_in_flight integer[],
  p_per_tenant integer, p_tenants uuid[], p_tenant_in_flight integer[]
)
RETURNS TABLE (
  id uuid, "tenantId" uuid, "fileId" uuid, "eventId" bigint, "eventType" text, url text, host text, "attemptCount" integer,
  "lockedUntil" timestamptz, "webhookSecret" text, "previousWebhookSecret" text, "previousWebhookSecretExpiresAt" timestamptz,
  event json
) LANGUAGE plpgsql ROWS 64 AS $$
#variable_conflict use_column
DECLARE
  remaining integer := p_limit;
  hosts text[] := COALESCE(p_hosts, '{}');
  host_counts integer[] := COALESCE(p_host_in_flight, '{}');
  tenants uuid[] := COALESCE(p_tenants, '{}');
  tenant_counts integer[] := COALESCE(p_tenant_in_flight, '{}');
  looked_at integer;
  claimed_ids uuid[];
  claimed_hosts text[];
  claimed_tenants uuid[];
BEGIN
  WHILE remaining > 0 LOOP
    WITH host_load AS (
      SELECT * FROM unnest(hosts, host_counts) AS l(host, in_flight)),
    tenant_load AS (
      SELECT * FROM unnest(tenants, tenant_counts) AS l(tenant_id, in_flight)),
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
      LIMIT remaining
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
      RETURNING webhook_delivery.id, webhook_delivery.host, webhook_delivery.tenant_id)
    SELECT (SELECT count(*) FROM candidates), array_agg(c.id), array_agg(c.host), array_agg(c.tenant_id)
    INTO looked_at, claimed_ids, claimed_hosts, claimed_tenants
    FROM claimed c;

    IF claimed_ids IS NOT NULL THEN
      -- A later statement, so a later snapshot: it sees every event the claimed deliveries name.
      RETURN QUERY
      SELECT c.id, c.tenant_id, c.file_id, c.event_id, c.event_type, c.url, c.host, c.attempt_count, c.locked_until,
             t.webhook_secret, t.previous_webhook_secret, t.previous_webhook_secret_expires_at::timestamptz,
             json_build_object('fileId', e.file_id, 'tenantId', e.tenant_id, 'status', e.status, 'stage', e.stage,
                               'progress', e.progress, 'message', e.message, 'metadata', e.metadata, 'sequence', e.sequence,
                               'attempt', e.attempt, 'etaSeconds', e.eta_seconds, 'createdAt', e.created_at)
      FROM webhook_delivery c JOIN tenant t ON t.id = c.tenant_id JOIN file_status_event e ON e.id = c.event_id
      WHERE c.id = ANY(claimed_ids);
    END IF;
    -- Every due delivery was looked at, or every one looked at was taken: nothing is left behind.
    EXIT WHEN claimed_ids IS NULL OR looked_at < remaining OR cardinality(claimed_ids) = looked_at;
    remaining := remaining - cardinality(claimed_ids);
    SELECT array_agg(l.host), array_agg(l.in_flight) INTO hosts, host_counts FROM (
      SELECT u.host, sum(u.in_flight)::integer AS in_flight FROM (
        SELECT * FROM unnest(hosts, host_counts) AS h(host, in_flight)
        UNION ALL SELECT claimed_host, 1 FROM unnest(claimed_hosts) AS h(claimed_host)) u
      GROUP BY u.host) l;
    SELECT array_agg(l.tenant_id), array_agg(l.in_flight) INTO tenants, tenant_counts FROM (
      SELECT u.tenant_id, sum(u.in_flight)::integer AS in_flight FROM (
        SELECT * FROM unnest(tenants, tenant_counts) AS t(tenant_id, in_flight)
        UNION ALL SELECT claimed_tenant, 1 FROM unnest(claimed_tenants) AS t(claimed_tenant)) u
      GROUP BY u.tenant_id) l;
  END LOOP;
END $$;

-- The four-argument claim of the previous release, kept for its processes during a rolling deploy:
-- its busy hosts are full, every other host and tenant is unbounded, as they were.
CREATE OR REPLACE FUNCTION claim_webhook_deliveries(p_dispatcher text, p_limit integer, p_lease_ms integer, p_busy_hosts text[])
RETURNS TABLE (
  id uuid, "tenantId" uuid, "fileId" uuid, "eventId" bigint, "eventType" text, url text, host text, "attemptCount" integer,
  "webhookSecret" text, "previousWebhookSecret" text, "previousWebhookSecretExpiresAt" timestamptz, event json
) LANGUAGE sql ROWS 64 AS $$
  SELECT c.id, c."tenantId", c."fileId", c."eventId", c."eventType", c.url, c.host, c."attemptCount",
         c."webhookSecret", c."previousWebhookSecret", c."previousWebhookSecretExpiresAt", c.event
  FROM claim_webhook_deliveries(p_dispatcher, p_limit, p_lease_ms,
                                p_limit, COALESCE(p_busy_hosts, '{}'), array_fill(p_limit, ARRAY[cardinality(COALESCE(p_busy_hosts, '{}'))]),
                                p_limit, '{}'::uuid[], '{}'::integer[]) c
$$;
