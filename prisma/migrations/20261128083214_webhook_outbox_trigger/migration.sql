-- AlterTable
ALTER TABLE "webhook_delivery" DROP COLUMN "payload";

-- The webhook outbox, written by the database itself: every status event, whichever path wrote it,
-- queues its delivery in the same transaction, and a status change costs no extra round trip.
-- A newer event supersedes the older non-terminal deliveries still waiting for the same receiver,
-- so a slow receiver gets the latest state, not a backlog; terminal events are never superseded.
-- FOR SHARE on the file row: a 410 that disables this webhook right now (it updates that row)
-- waits for this transaction and then discards what it queued, or this one waits and sees the
-- webhook disabled.
CREATE FUNCTION queue_webhook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delivery_type text := CASE NEW.status WHEN 'COMPLETED' THEN 'file.completed' WHEN 'FAILED' THEN 'file.failed' ELSE 'file.processing' END;
  target_url text;
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
  INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, state, next_attempt_at)
  VALUES (gen_random_uuid(), NEW.tenant_id, NEW.file_id, NEW.id, NEW.sequence, delivery_type, target_url,
          substring(target_url from '^[a-z]+://([^/?#]+)'), 'PENDING', NEW.created_at);
  RETURN NULL;
END $$;

CREATE TRIGGER webhook_outbox AFTER INSERT ON file_status_event
FOR EACH ROW EXECUTE FUNCTION queue_webhook_delivery();
