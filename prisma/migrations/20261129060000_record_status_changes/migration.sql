-- record_status_change for a batch: the changes that concurrent callers made while the previous
-- batch was written, in one statement and one transaction. On the embedded database each
-- statement costs far more than the change it carries (PGlite called directly, 2026-11-29: about
-- 0.5 ms per call against 0.1 ms per change in a batch of 50), so a busy service writes its
-- changes in batches.
-- The changes are recorded in the order given; each returned row names the change it records
-- (1-based). A change that is dropped (another attempt, or a terminal status) returns no row.
CREATE FUNCTION record_status_changes(
  p_file_ids uuid[], p_statuses text[], p_stages text[], p_progress integer[], p_messages text[],
  p_metadata jsonb[], p_attempts integer[]
) RETURNS TABLE (
  change_index integer, file_id uuid, tenant_id uuid, status text, stage text, progress integer, message text,
  metadata jsonb, sequence integer, attempt integer, eta_seconds double precision, created_at timestamptz(3)
) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_file_ids, 1), 0) LOOP
    RETURN QUERY
      SELECT i, e.file_id, e.tenant_id, e.status, e.stage, e.progress, e.message, e.metadata, e.sequence, e.attempt,
             e.eta_seconds, e.created_at
      FROM record_status_change(p_file_ids[i], p_statuses[i], p_stages[i], p_progress[i], p_messages[i],
                                p_metadata[i], p_attempts[i]) e;
  END LOOP;
END $$;
