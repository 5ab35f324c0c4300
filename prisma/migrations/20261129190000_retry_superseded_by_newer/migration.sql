-- An attempt that failed and would be tried again is superseded instead when it was a
-- `file.processing` delivery and its file and URL has a later delivery waiting. The outbox
-- trigger supersedes only deliveries still PENDING when a change queues a newer one; a delivery
-- being sent at that moment escaped it, and when its attempt failed it went back to PENDING, ahead
-- of the newer one in the file's order: a receiver that failed once got the stale state first,
-- and the file's terminal event waited behind every retry of it (up to the whole schedule).
-- The give-back of an unsent delivery (releaseDeliveries) already supersedes in the same case.
-- Otherwise as before: each attempt settles its delivery only under the lease it was made in, so
-- a record written again is harmless; returns whether a settled delivery's file and URL has a
-- later one waiting. Its plan stays cached (migration plan_cached_functions).
CREATE OR REPLACE FUNCTION record_webhook_attempts(
  p_dispatcher text, p_ids uuid[], p_locked_until timestamptz[], p_states text[], p_next_attempt_at timestamptz[],
  p_last_errors text[], p_attempted_at timestamptz[], p_duration_ms integer[], p_response_status integer[],
  p_response_bodies text[], p_errors text[]
) RETURNS boolean LANGUAGE plpgsql SET plan_cache_mode = auto AS $$
DECLARE
  later_waiting boolean;
BEGIN
  WITH input AS (
    SELECT * FROM unnest(p_ids, p_locked_until, p_states, p_next_attempt_at, p_last_errors, p_attempted_at, p_duration_ms,
                         p_response_status, p_response_bodies, p_errors)
      AS t(id, locked_until, state, next_attempt_at, last_error, attempted_at, duration_ms, response_status, response_body, error)),
  settling AS (
    SELECT i.*, i.state = 'PENDING' AND d.event_type = 'file.processing' AND EXISTS (
             SELECT 1 FROM webhook_delivery l
             WHERE l.file_id = d.file_id AND l.url = d.url AND l.state IN ('PENDING', 'SENDING') AND l.sequence > d.sequence) AS superseded
    FROM input i JOIN webhook_delivery d ON d.id = i.id),
  updated AS (
    UPDATE webhook_delivery d
    SET state = CASE WHEN s.superseded THEN 'DISCARDED' ELSE s.state END,
        discard_reason = CASE WHEN s.superseded THEN 'superseded' ELSE d.discard_reason END,
        next_attempt_at = CASE WHEN s.superseded THEN NULL ELSE s.next_attempt_at END,
        last_error = s.last_error, locked_by = NULL, locked_until = NULL
    FROM settling s
    WHERE d.id = s.id AND d.locked_by = p_dispatcher AND d.locked_until = s.locked_until AND d.state = 'SENDING'
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
