-- The dispatcher's record of a round of attempts, as a function so that its plan is made once per
-- connection, as the claim's is. Sent as a statement, it was planned on every round, and on the
-- embedded database planning it cost more than running it: 0.59 of a delivery's 1.12 ms of SQL
-- (scratch timing of the handoff and this record, batches of two, 2026-11-29); as a function, 0.23.
-- Each attempt settles its delivery only under the lease it was made in, so a record written
-- again is harmless; returns whether a settled delivery's file and URL has a later one waiting.
CREATE FUNCTION record_webhook_attempts(
  p_dispatcher text, p_ids uuid[], p_locked_until timestamptz[], p_states text[], p_next_attempt_at timestamptz[],
  p_last_errors text[], p_attempted_at timestamptz[], p_duration_ms integer[], p_response_status integer[],
  p_response_bodies text[], p_errors text[]
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  later_waiting boolean;
BEGIN
  WITH input AS (
    SELECT * FROM unnest(p_ids, p_locked_until, p_states, p_next_attempt_at, p_last_errors, p_attempted_at, p_duration_ms,
                         p_response_status, p_response_bodies, p_errors)
      AS t(id, locked_until, state, next_attempt_at, last_error, attempted_at, duration_ms, response_status, response_body, error)),
  updated AS (
    UPDATE webhook_delivery d
    SET state = i.state, next_attempt_at = i.next_attempt_at, last_error = i.last_error, locked_by = NULL, locked_until = NULL
    FROM input i
    WHERE d.id = i.id AND d.locked_by = p_dispatcher AND d.locked_until = i.locked_until AND d.state = 'SENDING'
    RETURNING d.id, d.file_id, d.url),
  recorded AS (
    INSERT INTO webhook_attempt (delivery_id, attempted_at, duration_ms, response_status, response_body, error)
    SELECT i.id, i.attempted_at, i.duration_ms, i.response_status, i.response_body, i.error
    FROM input i JOIN updated USING (id))
  SELECT EXISTS (
    SELECT 1 FROM updated u JOIN webhook_delivery w ON w.file_id = u.file_id AND w.url = u.url AND w.id <> u.id
    WHERE w.state = 'PENDING')
  INTO later_waiting;
  RETURN later_waiting;
END $$;
