-- The claim, reading the outbox in its due order and stopping once it has enough. The query
-- before this one filtered with anti-joins whose estimates left a row or two, so the planner read
-- every due delivery, checked each against the one-at-a-time rule and sorted them all, whatever
-- the claim's limit: with 5,000 due after an outage, each claim took 40-50 ms of the embedded
-- database's one thread, and the claims took 2.1 of the 6.6 s the backlog took to drain (scratch
-- timing, 2026-11-29). Now full hosts and tenants are arrays the scan leaves out, the rule stays
-- a filter, and the scan follows the due index: 0.7 ms for the same claim of 60 (EXPLAIN ANALYZE).
-- Otherwise as the per-tenant claim (migration webhook_claim_per_tenant): the same rounds, bounds
-- and answer. Planned on every call, as migration claim_custom_plans set it.
CREATE OR REPLACE FUNCTION claim_webhook_deliveries(
  p_dispatcher text, p_limit integer, p_lease_ms integer,
  p_per_host integer, p_hosts text[], p_host_in_flight integer[],
  p_per_tenant integer, p_tenants uuid[], p_tenant_in_flight integer[]
)
RETURNS TABLE (
  id uuid, "tenantId" uuid, "fileId" uuid, "eventId" bigint, "eventType" text, url text, host text, "attemptCount" integer,
  "lockedUntil" timestamptz, "webhookSecret" text, "previousWebhookSecret" text, "previousWebhookSecretExpiresAt" timestamptz,
  event json
) LANGUAGE plpgsql ROWS 64 SET plan_cache_mode = force_custom_plan AS $$
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
  full_hosts text[];
  full_tenants uuid[];
BEGIN
  WHILE remaining > 0 LOOP
    SELECT COALESCE(array_agg(l.host), '{}') INTO full_hosts FROM unnest(hosts, host_counts) AS l(host, in_flight) WHERE l.in_flight >= p_per_host;
    SELECT COALESCE(array_agg(l.tenant_id), '{}') INTO full_tenants FROM unnest(tenants, tenant_counts) AS l(tenant_id, in_flight) WHERE l.in_flight >= p_per_tenant;
    -- Every tenant full (one tenant, as most services have): nothing is left to look for, and a
    -- round would read the whole backlog to find that out.
    EXIT WHEN cardinality(full_tenants) > 0 AND NOT EXISTS (SELECT 1 FROM tenant t WHERE t.id <> ALL(full_tenants));
    WITH host_load AS (
      SELECT * FROM unnest(hosts, host_counts) AS l(host, in_flight)),
    tenant_load AS (
      SELECT * FROM unnest(tenants, tenant_counts) AS l(tenant_id, in_flight)),
    -- The due ones in the index's order, then those whose sender died mid-send: each scan stops
    -- once it has enough that the bounds and the one-at-a-time rule let through. (The rule is a
    -- subquery of its own, OFFSET 0, so that it stays a filter: as an anti-join its estimate left
    -- a row or two, and the planner read and checked every due delivery to sort them.)
    due AS (
      SELECT d.id, d.host, d.tenant_id, d.next_attempt_at, d.sequence FROM webhook_delivery d
      WHERE d.state = 'PENDING' AND d.next_attempt_at <= now()
        AND d.host <> ALL(full_hosts) AND d.tenant_id <> ALL(full_tenants)
        AND NOT EXISTS (
          SELECT 1 FROM webhook_delivery e
          WHERE e.file_id = d.file_id AND e.url = d.url AND e.id <> d.id AND e.state IN ('PENDING', 'SENDING')
            AND (e.sequence < d.sequence
                 -- a later one in flight: an earlier one was redelivered meanwhile
                 OR (e.state = 'SENDING' AND e.locked_until >= now()))
          OFFSET 0)
      ORDER BY d.next_attempt_at, d.sequence
      LIMIT remaining
      FOR UPDATE SKIP LOCKED),
    lapsed AS (
      SELECT d.id, d.host, d.tenant_id, d.next_attempt_at, d.sequence FROM webhook_delivery d
      WHERE d.state = 'SENDING' AND d.locked_until < now()
        AND d.host <> ALL(full_hosts) AND d.tenant_id <> ALL(full_tenants)
        AND NOT EXISTS (
          SELECT 1 FROM webhook_delivery e
          WHERE e.file_id = d.file_id AND e.url = d.url AND e.id <> d.id AND e.state IN ('PENDING', 'SENDING')
            AND (e.sequence < d.sequence OR (e.state = 'SENDING' AND e.locked_until >= now()))
          OFFSET 0)
      ORDER BY d.next_attempt_at, d.sequence
      LIMIT remaining
      FOR UPDATE SKIP LOCKED),
    candidates AS (
      SELECT * FROM due UNION ALL SELECT * FROM lapsed
      ORDER BY next_attempt_at, sequence
      LIMIT remaining),
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
