-- The status change returns its event as one json value, not as thirteen columns: every column
-- returned costs the embedded database, and PGlite's and Prisma's JavaScript after it. A change
-- returned as json took 322 µs of PGlite's time, as columns 407 (scratch timing, one change a
-- statement, 2026-11-29). record_status_event and record_status_events are
-- record_status_change and record_status_changes returning json; those two stay, in the shape the
-- previous release calls during a rolling deploy, now reading from these.
-- They also say, when handing over, whether a change queued a delivery that it did not hand over
-- (`queued`): the dispatcher claims for those only, not for every change of a file without a
-- webhook (in the bench's run with no webhook, 257 claims took 0.46 of 4 s of database time).

CREATE FUNCTION record_status_event(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer, p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (event json, handed json, queued boolean) LANGUAGE plpgsql AS $$
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
    queued := handed IS NULL AND EXISTS (
      SELECT 1 FROM webhook_delivery d WHERE d.file_id = p_file_id AND d.state IN ('PENDING', 'SENDING') AND d.sequence = recorded.sequence);
  END IF;
  -- As StatusEvent has it, and the event's id.
  event := json_build_object('id', recorded.id, 'fileId', recorded.file_id, 'tenantId', recorded.tenant_id,
                             'sequence', recorded.sequence, 'status', recorded.status, 'stage', recorded.stage, 'progress', recorded.progress,
                             'message', recorded.message, 'metadata', recorded.metadata, 'attempt', recorded.attempt,
                             'etaSeconds', recorded.eta_seconds, 'updatedAt', recorded.created_at);
  RETURN NEXT;
END $$;

-- The previous release's form, now reading the event from record_status_event.
CREATE OR REPLACE FUNCTION record_status_change(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer, p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (
  id bigint, file_id uuid, tenant_id uuid, sequence integer, status text, stage text, progress integer, message text,
  metadata jsonb, attempt integer, eta_seconds double precision, created_at timestamptz(3), handed json
) LANGUAGE sql AS $$
  SELECT (r.event->>'id')::bigint, (r.event->>'fileId')::uuid, (r.event->>'tenantId')::uuid, (r.event->>'sequence')::integer,
         r.event->>'status', r.event->>'stage', (r.event->>'progress')::integer, r.event->>'message', (r.event->'metadata')::jsonb,
         (r.event->>'attempt')::integer, (r.event->>'etaSeconds')::double precision, (r.event->>'updatedAt')::timestamptz, r.handed
  FROM record_status_event(p_file_id, p_status, p_stage, p_progress, p_message, p_metadata, p_attempt, p_dispatcher, p_lease_ms) r
$$;

-- record_status_event for each change in order, as record_status_changes does.
CREATE FUNCTION record_status_events(
  p_file_ids uuid[], p_statuses text[], p_stages text[], p_progress integer[], p_messages text[],
  p_metadata jsonb[], p_attempts integer[], p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (change_index integer, event json, handed json, queued boolean) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_file_ids, 1), 0) LOOP
    RETURN QUERY
      SELECT i, r.event, r.handed, r.queued FROM record_status_event(p_file_ids[i], p_statuses[i], p_stages[i], p_progress[i], p_messages[i],
                                                           p_metadata[i], p_attempts[i], p_dispatcher, p_lease_ms) r;
  END LOOP;
END $$;
