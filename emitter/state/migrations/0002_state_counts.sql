-- Per-state counts (pending, inflight, dead) kept in the totals slots by statement triggers,
-- in the transaction that changes the rows: `outbox status` and /metrics read 16 rows instead
-- of counting the backlog. Existing rows are counted once, here, with writers held off.
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE totals
    ADD COLUMN pending BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN inflight BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN dead BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION emitter_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totals SET events = totals.events + s.n, bytes = totals.bytes + s.b,
        pending = totals.pending + s.p, inflight = totals.inflight + s.i,
        dead = totals.dead + s.d
    FROM (SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b,
                 count(*) FILTER (WHERE state = 'pending') AS p,
                 count(*) FILTER (WHERE state = 'inflight') AS i,
                 count(*) FILTER (WHERE state = 'dead') AS d FROM new_rows) AS s
    WHERE slot = pg_backend_pid() % 16 AND s.n > 0;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION emitter_count_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totals SET events = totals.events - s.n, bytes = totals.bytes - s.b,
        pending = totals.pending - s.p, inflight = totals.inflight - s.i,
        dead = totals.dead - s.d
    FROM (SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b,
                 count(*) FILTER (WHERE state = 'pending') AS p,
                 count(*) FILTER (WHERE state = 'inflight') AS i,
                 count(*) FILTER (WHERE state = 'dead') AS d FROM old_rows) AS s
    WHERE slot = pg_backend_pid() % 16 AND s.n > 0;
    RETURN NULL;
END $$;
-- An UPDATE's old and new rows counted per state: the difference is what moved.
CREATE FUNCTION emitter_count_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totals SET pending = totals.pending + s.p, inflight = totals.inflight + s.i,
        dead = totals.dead + s.d
    FROM (SELECT sum(CASE state WHEN 'pending' THEN k ELSE 0 END) AS p,
                 sum(CASE state WHEN 'inflight' THEN k ELSE 0 END) AS i,
                 sum(CASE state WHEN 'dead' THEN k ELSE 0 END) AS d
          FROM (SELECT state, 1 AS k FROM new_rows
                UNION ALL SELECT state, -1 FROM old_rows) AS moved) AS s
    WHERE slot = pg_backend_pid() % 16 AND (s.p <> 0 OR s.i <> 0 OR s.d <> 0);
    RETURN NULL;
END $$;
CREATE TRIGGER events_count_move AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION emitter_count_move();

UPDATE totals SET pending = 0, inflight = 0, dead = 0;
UPDATE totals SET
    pending = (SELECT count(*) FROM events WHERE state = 'pending'),
    inflight = (SELECT count(*) FROM events WHERE state = 'inflight'),
    dead = (SELECT count(*) FROM events WHERE state = 'dead')
WHERE slot = 0;
