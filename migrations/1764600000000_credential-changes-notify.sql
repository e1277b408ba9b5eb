-- Up Migration

-- Tells every API process at commit that an operator's credentials in force may have changed
-- (status, current or pending Vault version, deletion), so that its in-memory copy of them
-- (src/services/credential-refs-cache.ts) is dropped at once rather than when it expires.
-- The payload is the operator id. Row-level, and only for a real change of those columns.
CREATE FUNCTION ops.notify_credential_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ops_credential_changes', OLD.id::text);
  RETURN NULL;
END $$;

CREATE TRIGGER operators_credential_change_notify
  AFTER UPDATE OF status, credentials_version, pending_credentials_version, deleted_at ON ops.operators
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.credentials_version IS DISTINCT FROM NEW.credentials_version
        OR OLD.pending_credentials_version IS DISTINCT FROM NEW.pending_credentials_version
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
  EXECUTE FUNCTION ops.notify_credential_change();

CREATE TRIGGER operators_credential_delete_notify
  AFTER DELETE ON ops.operators
  FOR EACH ROW EXECUTE FUNCTION ops.notify_credential_change();

-- Down Migration

DROP TRIGGER operators_credential_delete_notify ON ops.operators;
DROP TRIGGER operators_credential_change_notify ON ops.operators;
DROP FUNCTION ops.notify_credential_change();
