-- record_status_change of one attempt: a change names the attempt it belongs to, and is dropped
-- once the file has moved on to another (a late write of a worker whose attempt failed and was
-- retried must not land on the retry). NULL names whichever attempt is current. Within the
-- attempt, the stage no longer goes back either: a worker that lost its lease but still runs must
-- not move the file back behind its successor (progress was already kept from going back).
CREATE FUNCTION record_status_change(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb,
  p_attempt integer
) RETURNS SETOF file_status_event LANGUAGE plpgsql AS $$
DECLARE
  current_row file_status%ROWTYPE;
  changed_at timestamptz(3) := now();
  next_progress integer;
  next_stage text;
  eta double precision;
  recorded file_status_event%ROWTYPE;
  stages CONSTANT text[] := ARRAY['QUEUED', 'VALIDATING', 'CONVERTING', 'STORING', 'DONE'];
BEGIN
  SELECT * INTO current_row FROM file_status WHERE file_id = p_file_id FOR UPDATE;
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
  WHERE file_id = p_file_id;
  INSERT INTO file_status_event (file_id, tenant_id, sequence, status, stage, progress, message, metadata, attempt,
                                 eta_seconds, created_at)
  VALUES (p_file_id, current_row.tenant_id, current_row.sequence + 1, p_status, next_stage,
          next_progress, p_message, current_row.metadata || COALESCE(p_metadata, '{}'::jsonb), current_row.attempt, eta,
          changed_at)
  RETURNING * INTO recorded;
  RETURN NEXT recorded;
END $$;

-- The previous signature stays, as a wrapper, for processes of the previous release that still run
-- during a rolling deploy on PostgreSQL. Drop it in a later release.
CREATE OR REPLACE FUNCTION record_status_change(
  p_file_id uuid, p_status text, p_stage text, p_progress integer, p_message text, p_metadata jsonb
) RETURNS SETOF file_status_event LANGUAGE sql AS $$
  SELECT * FROM record_status_change(p_file_id, p_status, p_stage, p_progress, p_message, p_metadata, NULL::integer)
$$;
