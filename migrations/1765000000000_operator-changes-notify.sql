-- Up Migration

-- Tells every health-ingestion replica (and API process) at commit that what decides where an
-- operator's health reports go may have changed (status, config version, pending Vault version,
-- deletion, the row's last change), so that its in-memory copy (src/health/pipeline.ts, through
-- src/db/notified-cache.ts) is dropped at once rather than when it expires. The payload is the
-- operator id. Row-level, and only for a real change of those columns. No column list: one would
-- let the trigger see only the columns an UPDATE names, not updated_at as operators_touch sets it.
CREATE FUNCTION ops.notify_operator_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ops_operator_changes', OLD.id::text);
  RETURN NULL;
END $$;

CREATE TRIGGER operators_change_notify
  AFTER UPDATE ON ops.operators
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.version IS DISTINCT FROM NEW.version
        OR OLD.pending_credentials_version IS DISTINCT FROM NEW.pending_credentials_version
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.updated_at IS DISTINCT FROM NEW.updated_at)
  EXECUTE FUNCTION ops.notify_operator_change();

CREATE TRIGGER operators_delete_notify
  AFTER DELETE ON ops.operators
  FOR EACH ROW EXECUTE FUNCTION ops.notify_operator_change();

-- Down Migration

DROP TRIGGER operators_delete_notify ON ops.operators;
DROP TRIGGER operators_change_notify ON ops.operators;
DROP FUNCTION ops.notify_operator_change();
