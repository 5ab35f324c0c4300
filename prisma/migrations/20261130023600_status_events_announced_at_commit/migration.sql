-- On PostgreSQL, where API and workers may be separate processes, each status event is announced
-- on the bus's channel by the transaction that records it. Announced by the process after its
-- commit, as before, an event could be lost (the process stopped or died with it still queued
-- for its publishing connection) or arrive out of order (one process's announcement queued behind
-- others while another process recorded the file's next change): a per-file stream then never
-- completed, and a tenant-wide stream, taking the first event it heard of a new file as its
-- first, dropped sequence 1 when it came (a review reproduced both). PostgreSQL delivers a
-- transaction's notifications at its commit, in commit order, and only if it commits.
-- The payload is what the processes sent: {"type": "status", "detail": <the event as StatusEvent
-- has it>}. NOTIFY takes at most 8000 bytes; an event is far smaller (its message and metadata
-- are the service's own, the claimed type in them bounded), and one that is not is left
-- unannounced, with a warning, rather than failing the change: a stream reads it from the table
-- when the file's next event shows the gap.
-- Only sessions that set filestatus.bus to 'notify' announce (the service's PostgreSQL sessions,
-- src/db/database.ts): the embedded database's bus is in its one process, and the trigger's WHEN
-- keeps it from costing anything there.
CREATE FUNCTION announce_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload text := json_build_object('type', 'status', 'detail', json_build_object(
    'fileId', NEW.file_id, 'tenantId', NEW.tenant_id, 'sequence', NEW.sequence, 'status', NEW.status, 'stage', NEW.stage,
    'progress', NEW.progress, 'message', NEW.message, 'metadata', NEW.metadata, 'attempt', NEW.attempt,
    'etaSeconds', NEW.eta_seconds, 'updatedAt', NEW.created_at))::text;
BEGIN
  IF octet_length(payload) < 8000 THEN
    PERFORM pg_notify('filestatus_bus', payload);
  ELSE
    RAISE WARNING 'status event % of file % not announced: % bytes is more than NOTIFY takes', NEW.sequence, NEW.file_id, octet_length(payload);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER status_event_announce AFTER INSERT ON file_status_event
  FOR EACH ROW WHEN (current_setting('filestatus.bus', true) = 'notify')
  EXECUTE FUNCTION announce_status_event();
