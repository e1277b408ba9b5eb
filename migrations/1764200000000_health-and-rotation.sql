-- Up Migration

-- A redelivered health batch must not log a report twice: the report's identity is who sent it
-- and when (reported_at is the partition key, so it can be part of a unique index).
CREATE UNIQUE INDEX operator_health_log_report_key
  ON ops.operator_health_log (operator_id, connector_instance, reported_at);

-- The Vault version a running credential rotation waits for the connector to bind with. The
-- current version (credentials_version) stays the default answer until the rotation completes.
ALTER TABLE ops.operators ADD COLUMN pending_credentials_version integer
  CHECK (pending_credentials_version IS NULL OR pending_credentials_version > 0);

-- Down Migration

ALTER TABLE ops.operators DROP COLUMN pending_credentials_version;
DROP INDEX ops.operator_health_log_report_key;
