-- Up Migration

-- Every row carries audit columns; updated_at is kept by a trigger so no code path can forget it.
CREATE OR REPLACE FUNCTION ops.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE ops.operators (
  id                      uuid PRIMARY KEY,
  name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  host                    text NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
  port                    integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  system_id               varchar(15) NOT NULL CHECK (length(system_id) >= 1),
  system_type             varchar(12) NOT NULL DEFAULT '',
  bind_type               text NOT NULL CHECK (bind_type IN ('transmitter', 'receiver', 'transceiver')),
  tls                     boolean NOT NULL DEFAULT false,
  window_size             integer NOT NULL CHECK (window_size BETWEEN 1 AND 1000),
  enquire_link_interval_s integer NOT NULL CHECK (enquire_link_interval_s BETWEEN 5 AND 3600),
  labels                  jsonb NOT NULL DEFAULT '{}'::jsonb,
  status                  text NOT NULL CHECK (status IN ('ONBOARDING', 'ACTIVE', 'ONBOARDING_FAILED', 'DRAINING', 'DELETED')),
  status_reason           text,
  -- Config version: bumped by every config change, carried by every event (0 until announced).
  version                 bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
  -- The Vault KV version in force; a number, never the secret.
  credentials_version     integer,
  created_at              timestamptz NOT NULL DEFAULT now(),
  created_by              text NOT NULL,
  updated_at              timestamptz NOT NULL DEFAULT now(),
  updated_by              text NOT NULL,
  deleted_at              timestamptz
);
-- One live operator per SMPP endpoint and account; a failed onboarding frees it again.
CREATE UNIQUE INDEX operators_endpoint_live_key ON ops.operators (lower(host), port, system_id)
  WHERE deleted_at IS NULL AND status <> 'ONBOARDING_FAILED';
CREATE INDEX operators_status_id_idx ON ops.operators (status, id) WHERE deleted_at IS NULL;
CREATE TRIGGER operators_touch BEFORE UPDATE ON ops.operators
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

CREATE TABLE ops.prefix_tables (
  id          uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL,
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX prefix_tables_name_live_key ON ops.prefix_tables (name) WHERE deleted_at IS NULL;
CREATE TRIGGER prefix_tables_touch BEFORE UPDATE ON ops.prefix_tables
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

CREATE TABLE ops.prefix_table_entries (
  id              bigserial PRIMARY KEY,
  prefix_table_id uuid NOT NULL REFERENCES ops.prefix_tables (id),
  prefix          varchar(15) NOT NULL CHECK (prefix ~ '^[0-9]{1,15}$'),
  created_at      timestamptz NOT NULL DEFAULT now(),
  created_by      text NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  updated_by      text NOT NULL,
  deleted_at      timestamptz
);
CREATE UNIQUE INDEX prefix_table_entries_live_key ON ops.prefix_table_entries (prefix_table_id, prefix)
  WHERE deleted_at IS NULL;
CREATE TRIGGER prefix_table_entries_touch BEFORE UPDATE ON ops.prefix_table_entries
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

CREATE TABLE ops.routing_rules (
  id               uuid PRIMARY KEY,
  operator_id      uuid NOT NULL REFERENCES ops.operators (id),
  prefix_table_id  uuid REFERENCES ops.prefix_tables (id),
  prefixes         text[],
  priority         integer NOT NULL CHECK (priority >= 0),
  weight           integer NOT NULL CHECK (weight BETWEEN 0 AND 1000),
  cost_per_segment numeric(14, 6) NOT NULL CHECK (cost_per_segment >= 0),
  currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  enabled          boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  updated_by       text NOT NULL,
  deleted_at       timestamptz,
  -- A rule targets either a prefix table or an inline prefix list, never both.
  CHECK ((prefix_table_id IS NULL) <> (prefixes IS NULL)),
  CHECK (prefixes IS NULL OR cardinality(prefixes) >= 1)
);
CREATE INDEX routing_rules_operator_idx ON ops.routing_rules (operator_id) WHERE deleted_at IS NULL;
CREATE INDEX routing_rules_prefix_table_idx ON ops.routing_rules (prefix_table_id) WHERE deleted_at IS NULL;
CREATE TRIGGER routing_rules_touch BEFORE UPDATE ON ops.routing_rules
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

CREATE TABLE ops.tps_limits (
  id               uuid PRIMARY KEY,
  operator_id      uuid NOT NULL REFERENCES ops.operators (id),
  tps_cap          integer NOT NULL CHECK (tps_cap > 0),
  burst_window_ms  integer NOT NULL CHECK (burst_window_ms > 0),
  enforcement_mode text NOT NULL CHECK (enforcement_mode IN ('hard', 'shape', 'monitor')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  updated_by       text NOT NULL,
  deleted_at       timestamptz
);
CREATE UNIQUE INDEX tps_limits_operator_live_key ON ops.tps_limits (operator_id) WHERE deleted_at IS NULL;
CREATE TRIGGER tps_limits_touch BEFORE UPDATE ON ops.tps_limits
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

-- Health reports arrive every few seconds per operator: the log is partitioned by day so
-- retention drops whole partitions instead of deleting rows (see ops.prune_health_log).
CREATE TABLE ops.operator_health_log (
  id                  bigserial,
  operator_id         uuid NOT NULL,
  status              text NOT NULL CHECK (status IN ('UP', 'DEGRADED', 'DOWN', 'AUTH_FAILED')),
  bound_sessions      integer NOT NULL CHECK (bound_sessions >= 0),
  inflight            integer NOT NULL CHECK (inflight >= 0),
  credentials_version integer,
  connector_instance  text NOT NULL,
  reported_at         timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  created_by          text NOT NULL,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  updated_by          text NOT NULL,
  PRIMARY KEY (id, reported_at)
) PARTITION BY RANGE (reported_at);
CREATE TABLE ops.operator_health_log_default PARTITION OF ops.operator_health_log DEFAULT;
CREATE INDEX operator_health_log_operator_idx ON ops.operator_health_log (operator_id, reported_at DESC);

-- Creates the daily partitions from today to days_ahead; safe to call repeatedly.
CREATE OR REPLACE FUNCTION ops.ensure_health_log_partitions(days_ahead integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  d date;
BEGIN
  FOR d IN SELECT generate_series(current_date, current_date + days_ahead, interval '1 day')::date LOOP
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS ops.%I PARTITION OF ops.operator_health_log FOR VALUES FROM (%L) TO (%L)',
      'operator_health_log_' || to_char(d, 'YYYYMMDD'), d, d + 1);
  END LOOP;
END $$;

-- Drops daily partitions entirely older than keep_days; returns how many were dropped.
CREATE OR REPLACE FUNCTION ops.prune_health_log(keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_namespace n ON n.oid = p.relnamespace
     WHERE n.nspname = 'ops' AND p.relname = 'operator_health_log'
       AND c.relname ~ '^operator_health_log_[0-9]{8}$'
       AND to_date(right(c.relname, 8), 'YYYYMMDD') < current_date - keep_days
  LOOP
    EXECUTE format('DROP TABLE ops.%I', part.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;

SELECT ops.ensure_health_log_partitions(7);

-- Transactional outbox: a config change and its event commit together; the relay publishes
-- in id order with Nats-Msg-Id = event_id, so a crash between commit and publish loses nothing.
CREATE TABLE ops.event_outbox (
  id           bigserial PRIMARY KEY,
  event_id     uuid NOT NULL UNIQUE,
  subject      text NOT NULL,
  operator_id  uuid,
  version      bigint,
  payload      jsonb NOT NULL,
  published_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text NOT NULL,
  UNIQUE (operator_id, version)
);
CREATE INDEX event_outbox_pending_idx ON ops.event_outbox (id) WHERE published_at IS NULL;
CREATE TRIGGER event_outbox_touch BEFORE UPDATE ON ops.event_outbox
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

-- Replays of POST requests carrying an Idempotency-Key.
CREATE TABLE ops.idempotency_keys (
  actor         text NOT NULL,
  key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
  request_hash  text NOT NULL,
  status_code   integer,
  response_body jsonb,
  response_headers jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  updated_by    text NOT NULL,
  PRIMARY KEY (actor, key)
);
CREATE TRIGGER idempotency_keys_touch BEFORE UPDATE ON ops.idempotency_keys
  FOR EACH ROW EXECUTE FUNCTION ops.touch_updated_at();

-- Down Migration
DROP TABLE IF EXISTS ops.idempotency_keys;
DROP TABLE IF EXISTS ops.event_outbox;
DROP FUNCTION IF EXISTS ops.prune_health_log(integer);
DROP FUNCTION IF EXISTS ops.ensure_health_log_partitions(integer);
DROP TABLE IF EXISTS ops.operator_health_log;
DROP TABLE IF EXISTS ops.tps_limits;
DROP TABLE IF EXISTS ops.routing_rules;
DROP TABLE IF EXISTS ops.prefix_table_entries;
DROP TABLE IF EXISTS ops.prefix_tables;
DROP TABLE IF EXISTS ops.operators;
DROP FUNCTION IF EXISTS ops.touch_updated_at();
