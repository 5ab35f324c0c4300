-- A failed file.processing attempt that would be tried again is superseded when its file and URL
-- has a later delivery waiting (migration retry_superseded_by_newer). A status change that was
-- under way as the attempt was recorded fell between the two: its trigger supersedes only PENDING
-- deliveries, and passed this one by as SENDING; the record's snapshot did not see the change's
-- uncommitted delivery. The stale state was tried again, and the newer one, terminal or not, waited
-- behind the whole retry (PostgreSQL, two processes; a review's reproduction delayed a
-- file.completed by 3.2 s). Now the record first waits for the status changes under way of those
-- files: a change holds its file's file_status row until it commits, and the next statement,
-- with a new snapshot, sees its delivery. A change that starts after this lock waits instead, and
-- its trigger finds the attempt PENDING and supersedes it. Only for the attempts that go back to
-- PENDING as file.processing, the only ones a newer delivery can supersede: a delivered one locks
-- nothing. Locked in file order, as a batch of status changes locks them.
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
  PERFORM 1 FROM file_status s
  WHERE s.file_id IN (
    SELECT d.file_id FROM unnest(p_ids, p_states) AS i(id, state) JOIN webhook_delivery d ON d.id = i.id
    WHERE i.state = 'PENDING' AND d.event_type = 'file.processing')
  ORDER BY s.file_id
  FOR SHARE OF s;

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
