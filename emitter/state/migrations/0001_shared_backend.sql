-- The shared backend's first schema: the outbox, its counters, key/value state, throttle
-- windows and summaries, fleet-wide once keys, leases, shared pauses and the replicas seen.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused, like the SQLite one
    rule_id TEXT NOT NULL,
    body BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,  -- inflight: when the claim's lease runs out
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'dead')),
    last_status INTEGER,
    last_error TEXT,
    deadline DOUBLE PRECISION NOT NULL,
    dead_at DOUBLE PRECISION,
    claimed_by TEXT  -- the replica holding the lease while inflight
);
CREATE INDEX events_due ON events (next_attempt_at, id) WHERE state <> 'dead';
CREATE INDEX events_claimed ON events (claimed_by) WHERE state = 'inflight';

-- Totals in 16 slots (by backend pid) so concurrent replicas do not queue on one row.
CREATE TABLE totals (
    slot INTEGER PRIMARY KEY,
    events BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0
);
INSERT INTO totals (slot) SELECT generate_series(0, 15);

CREATE FUNCTION emitter_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totals SET events = totals.events + s.n, bytes = totals.bytes + s.b
    FROM (SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b FROM new_rows) AS s
    WHERE slot = pg_backend_pid() % 16 AND s.n > 0;
    RETURN NULL;
END $$;
CREATE FUNCTION emitter_count_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totals SET events = totals.events - s.n, bytes = totals.bytes - s.b
    FROM (SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b FROM old_rows) AS s
    WHERE slot = pg_backend_pid() % 16 AND s.n > 0;
    RETURN NULL;
END $$;
CREATE TRIGGER events_count_in AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION emitter_count_in();
CREATE TRIGGER events_count_out AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION emitter_count_out();

CREATE TABLE counters (
    name TEXT NOT NULL,
    slot INTEGER NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, slot)
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,  -- JSON, as in the SQLite state store
    PRIMARY KEY (namespace, key)
);

CREATE TABLE throttle_windows (
    rule_id TEXT NOT NULL,
    key TEXT NOT NULL,
    mode TEXT NOT NULL,
    start_at DOUBLE PRECISION NOT NULL,
    end_at DOUBLE PRECISION NOT NULL,
    count INTEGER NOT NULL,  -- 0: no open window (a placeholder row to lock)
    details TEXT NOT NULL DEFAULT '[]',
    more INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, key)
);
CREATE TABLE throttle_summaries (
    rule_id TEXT NOT NULL,
    key TEXT NOT NULL,
    start_at DOUBLE PRECISION NOT NULL,
    end_at DOUBLE PRECISION NOT NULL,
    count INTEGER NOT NULL,
    details TEXT NOT NULL,
    more INTEGER NOT NULL,
    PRIMARY KEY (rule_id, key, start_at)
);

CREATE TABLE once_keys (key TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_at DOUBLE PRECISION NOT NULL);
CREATE TABLE pauses (name TEXT PRIMARY KEY, until_at DOUBLE PRECISION NOT NULL);
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);
