-- Deliveries handed to a dispatcher by the status change that queues them, instead of claimed.
-- A claim cost the embedded database about as much as a third of what a delivery costs it in all
-- (bench/webhooks.ts, 2026-11-29: 0.34 of 1.2 ms, the delivery row rewritten once more, and
-- the claim's scan and joins), and a delivery waited up to a claim interval for it. A process that
-- records a change and runs a dispatcher with room names that dispatcher and a lease; a delivery
-- that could be claimed at once is then inserted already leased to it (SENDING, first attempt),
-- and comes back with the change, with what sending it needs. The rules of the claim hold: per
-- file and URL, one at a time, in sequence order (a delivery is handed only when none other of its
-- file and URL is open), and a lapsed lease is claimed again by any dispatcher.

-- The outbox trigger, reading the handoff that record_status_change sets while it writes the event:
-- 'dispatcher lease-ms', or unset (every other writer of events: uploads, retries).
CREATE OR REPLACE FUNCTION queue_webhook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delivery_type text := CASE NEW.status WHEN 'COMPLETED' THEN 'file.completed' WHEN 'FAILED' THEN 'file.failed' ELSE 'file.processing' END;
  target_url text;
  handoff text := nullif(current_setting('filestatus.webhook_handoff', true), '');
  hand_over boolean;
BEGIN
  SELECT webhook_url INTO target_url FROM file
  WHERE id = NEW.file_id AND webhook_url IS NOT NULL AND webhook_disabled_at IS NULL AND delivery_type = ANY(webhook_events)
  FOR SHARE;
  IF target_url IS NULL THEN
    RETURN NULL;
  END IF;
  UPDATE webhook_delivery SET state = 'DISCARDED', discard_reason = 'superseded', next_attempt_at = NULL
  WHERE file_id = NEW.file_id AND url = target_url AND state = 'PENDING' AND event_type = 'file.processing'
    AND sequence < NEW.sequence;
  hand_over := handoff IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM webhook_delivery WHERE file_id = NEW.file_id AND url = target_url AND state IN ('PENDING', 'SENDING'));
  -- A handed delivery's lease runs from now, not from the transaction's start: a batch may have
  -- waited for locks.
  INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, state, next_attempt_at,
                                attempt_count, locked_by, locked_until)
  VALUES (gen_random_uuid(), NEW.tenant_id, NEW.file_id, NEW.id, NEW.sequence, delivery_type, target_url,
          substring(target_url from '^[a-z]+://([^/?#]+)'), CASE WHEN hand_over THEN 'SENDING' ELSE 'PENDING' END, NEW.created_at,
          CASE WHEN hand_over THEN 1 ELSE 0 END, CASE WHEN hand_over THEN split_part(handoff, ' ', 1) END,
          CASE WHEN hand_over THEN clock_timestamp() + split_part(handoff, ' ', 2)::integer * interval '1 millisecond' END);
  RETURN NULL;
END $$;

-- record_status_change, handing the delivery that the change queues to p_dispatcher (NULL: to
-- none, it stays PENDING), and returning it on the event's row with what sending it needs, as the
-- claim returns it. The previous form, which hands nothing, now calls this one.
CREATE FUNCTION record_status_change(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer, p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (
  id bigint, file_id uuid, tenant_id uuid, sequence integer, status text, stage text, progress integer, message text,
  metadata jsonb, attempt integer, eta_seconds double precision, created_at timestamptz(3), handed json
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  current_row file_status%ROWTYPE;
  changed_at timestamptz(3) := now();
  next_progress integer;
  next_stage text;
  eta double precision;
  recorded file_status_event%ROWTYPE;
  stages CONSTANT text[] := ARRAY['QUEUED', 'VALIDATING', 'CONVERTING', 'STORING', 'DONE'];
BEGIN
  SELECT * INTO current_row FROM file_status WHERE file_status.file_id = p_file_id FOR UPDATE;
  IF NOT FOUND OR current_row.status <> 'PROCESSING' OR p_attempt <> current_row.attempt THEN
    RETURN;
  END IF;
  next_progress := LEAST(100, GREATEST(current_row.progress, p_progress));
  next_stage := COALESCE(p_stage, current_row.stage);
  IF array_position(stages, next_stage) < array_position(stages, current_row.stage) THEN
    next_stage := current_row.stage;
  END IF;
  -- Time left at the rate so far in this attempt, to a tenth of a second.
  IF p_status = 'PROCESSING' AND next_progress > 0 AND next_progress < 100 THEN
    eta := round((EXTRACT(EPOCH FROM changed_at - current_row.attempt_started_at) * (100 - next_progress) / next_progress)::numeric, 1);
  END IF;
  UPDATE file_status
  SET status = p_status, stage = next_stage, progress = next_progress, message = p_message,
      metadata = current_row.metadata || COALESCE(p_metadata, '{}'::jsonb), sequence = current_row.sequence + 1,
      eta_seconds = eta, updated_at = changed_at
  WHERE file_status.file_id = p_file_id;
  IF p_dispatcher IS NOT NULL THEN
    PERFORM set_config('filestatus.webhook_handoff', p_dispatcher || ' ' || p_lease_ms, true);
  END IF;
  INSERT INTO file_status_event (file_id, tenant_id, sequence, status, stage, progress, message, metadata, attempt,
                                 eta_seconds, created_at)
  VALUES (p_file_id, current_row.tenant_id, current_row.sequence + 1, p_status, next_stage,
          next_progress, p_message, current_row.metadata || COALESCE(p_metadata, '{}'::jsonb), current_row.attempt, eta,
          changed_at)
  RETURNING * INTO recorded;
  IF p_dispatcher IS NOT NULL THEN
    -- The setting lasts the transaction, which may write other events after this one.
    PERFORM set_config('filestatus.webhook_handoff', '', true);
    -- Through the open deliveries' index: a file's open deliveries are a handful, its deliveries ever made are not.
    SELECT json_build_object('id', d.id, 'tenantId', d.tenant_id, 'fileId', d.file_id, 'eventId', d.event_id::text,
                             'eventType', d.event_type, 'url', d.url, 'host', d.host, 'attemptCount', d.attempt_count,
                             'lockedUntil', d.locked_until, 'webhookSecret', t.webhook_secret,
                             'previousWebhookSecret', t.previous_webhook_secret,
                             'previousWebhookSecretExpiresAt', t.previous_webhook_secret_expires_at::timestamptz)
    INTO handed
    FROM webhook_delivery d JOIN tenant t ON t.id = d.tenant_id
    WHERE d.file_id = p_file_id AND d.state IN ('PENDING', 'SENDING') AND d.state = 'SENDING'
      AND d.sequence = recorded.sequence AND d.locked_by = p_dispatcher;
  END IF;
  id := recorded.id;
  file_id := recorded.file_id;
  tenant_id := recorded.tenant_id;
  sequence := recorded.sequence;
  status := recorded.status;
  stage := recorded.stage;
  progress := recorded.progress;
  message := recorded.message;
  metadata := recorded.metadata;
  attempt := recorded.attempt;
  eta_seconds := recorded.eta_seconds;
  created_at := recorded.created_at;
  RETURN NEXT;
END $$;

CREATE OR REPLACE FUNCTION record_status_change(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer
) RETURNS SETOF file_status_event LANGUAGE sql AS $$
  SELECT id, file_id, tenant_id, sequence, status, stage, progress, message, metadata, attempt, eta_seconds, created_at
  FROM record_status_change(p_file_id, p_status, p_stage, p_progress, p_message, p_metadata, p_attempt, NULL::text, NULL::integer)
$$;

-- record_status_changes, handing over as record_status_change does.
CREATE FUNCTION record_status_changes(
  p_file_ids uuid[], p_statuses text[], p_stages text[], p_progress integer[], p_messages text[],
  p_metadata jsonb[], p_attempts integer[], p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (
  change_index integer, id bigint, file_id uuid, tenant_id uuid, sequence integer, status text, stage text, progress integer,
  message text, metadata jsonb, attempt integer, eta_seconds double precision, created_at timestamptz(3), handed json
) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_file_ids, 1), 0) LOOP
    RETURN QUERY
      SELECT i, r.* FROM record_status_change(p_file_ids[i], p_statuses[i], p_stages[i], p_progress[i], p_messages[i],
                                              p_metadata[i], p_attempts[i], p_dispatcher, p_lease_ms) r;
  END LOOP;
END $$;
