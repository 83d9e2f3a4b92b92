/**
 * Storage over time (issue 11). Two changes that let the janitor bound what every rotation
 * leaves behind:
 *
 * - `audit_events` becomes a table partitioned by range of `at`, so audit retention drops a
 *   whole day's partition instead of deleting rows. The existing table is converted in place:
 *   it is attached, data and all, as the partition `audit_events_legacy` covering everything
 *   up to the end of its last day (no copy; one scan validates the range and one builds the
 *   new key), or dropped if it is empty. A DEFAULT partition catches any row no day partition
 *   covers yet, so an insert never fails because the janitor has not run; the janitor creates
 *   day partitions ahead (`audit_events_pYYYYMMDD`, UTC days) and moves stray rows out of the
 *   default. The key becomes (id, at): a partitioned table's unique key must contain its
 *   partition column; ids still come from the same sequence, in insertion order.
 * - A partial index on the expiry of consumed refresh tokens, so the janitor finds the ones it
 *   may drop without scanning the live chain of every family.
 */
export const storageRetentionSchema = `
ALTER TABLE audit_events RENAME TO audit_events_legacy;
ALTER TABLE audit_events_legacy DROP CONSTRAINT audit_events_pkey;
ALTER INDEX audit_events_family RENAME TO audit_events_legacy_family;
ALTER INDEX audit_events_at RENAME TO audit_events_legacy_at;
ALTER SEQUENCE audit_events_id_seq OWNED BY NONE;
ALTER TABLE audit_events_legacy ALTER COLUMN id DROP DEFAULT;

CREATE TABLE audit_events (
  id bigint NOT NULL DEFAULT nextval('audit_events_id_seq'),
  at timestamptz NOT NULL,
  type text NOT NULL,
  user_id uuid,
  client_id text,
  family_id uuid,
  token_id text,
  ip text,
  detail jsonb,
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
ALTER SEQUENCE audit_events_id_seq OWNED BY audit_events.id;
CREATE INDEX audit_events_family ON audit_events (family_id);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

DO $$
DECLARE
  upper_bound timestamptz;
BEGIN
  SELECT date_trunc('day', max(at), 'UTC') + interval '1 day' INTO upper_bound FROM audit_events_legacy;
  IF upper_bound IS NULL THEN
    DROP TABLE audit_events_legacy;
  ELSE
    EXECUTE format(
      'ALTER TABLE audit_events ATTACH PARTITION audit_events_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
      upper_bound);
  END IF;
END $$;

CREATE INDEX refresh_tokens_consumed_expiry ON refresh_tokens (expires_at) WHERE consumed_at IS NOT NULL;
`;
