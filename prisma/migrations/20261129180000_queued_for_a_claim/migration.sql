-- record_status_event's `queued` now says whether the change queued a delivery that a claim
-- must find, not merely one it did not hand over. A delivery queued behind one of its file and
-- URL that is in flight under a live lease cannot be claimed before that one is recorded, and its
-- record says that a later one waits: the dispatcher claims then. Claiming at the change found
-- nothing, at the cost of a scan of the outbox: behind a receiver that hangs, every change of its
-- files made one (bench/webhooks.ts, the run with a hanging receiver, 2026-11-29: 169 and 187
-- claims, 0.33 and 0.43 s of the database's time, against 16 and 24 claims, 0.04 and 0.07 s, with
-- this). Only the body changes; the previous release does not read `queued`.

CREATE OR REPLACE FUNCTION record_status_event(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer, p_dispatcher text, p_lease_ms integer
) RETURNS TABLE (event json, handed json, queued boolean) LANGUAGE plpgsql
-- As plan_cached_functions set it: a CREATE OR REPLACE drops what it does not say.
SET plan_cache_mode = auto AS $$
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
    -- A delivery queued behind one of its file and URL in flight under a live lease waits for
    -- that one's record, which says that a later one waits (record_webhook_attempts): no claim
    -- could take it before. Behind a pending one, or one whose lease lapsed, a claim may.
    IF handed IS NULL THEN
      SELECT NOT EXISTS (
               SELECT 1 FROM webhook_delivery l
               WHERE l.file_id = q.file_id AND l.url = q.url AND l.state = 'SENDING' AND l.locked_until >= now() AND l.id <> q.id)
      INTO queued
      FROM webhook_delivery q
      WHERE q.file_id = p_file_id AND q.state IN ('PENDING', 'SENDING') AND q.sequence = recorded.sequence;
    END IF;
    queued := coalesce(queued, false);
  END IF;
  -- As StatusEvent has it, and the event's id.
  event := json_build_object('id', recorded.id, 'fileId', recorded.file_id, 'tenantId', recorded.tenant_id,
                             'sequence', recorded.sequence, 'status', recorded.status, 'stage', recorded.stage, 'progress', recorded.progress,
                             'message', recorded.message, 'metadata', recorded.metadata, 'attempt', recorded.attempt,
                             'etaSeconds', recorded.eta_seconds, 'updatedAt', recorded.created_at);
  RETURN NEXT;
END $$;
