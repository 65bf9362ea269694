-- Running service instances, for `verwijsindex status`: each replica upserts its row
-- every few seconds; a row not seen for a while is a replica that is gone.
CREATE TABLE service_instance (
    instance_id  text PRIMARY KEY,
    service      text NOT NULL,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    ready        boolean NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Statistics facts: one anonymous row per countable event (month, sector,
-- municipality, what happened). No youth, no reporter, no melding reference: figures
-- survive the purge of the meldingen they counted. Insert-only, so concurrent
-- registrations never contend on a counter row.
CREATE TABLE stats_fact (
    id           bigserial PRIMARY KEY,
    month        date NOT NULL,            -- first day of the month (Europe/Amsterdam)
    sector       text NOT NULL,
    municipality text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('registered', 'matched', 'informed', 'deferred')),
    delta        integer NOT NULL DEFAULT 1
);
CREATE INDEX stats_fact_month ON stats_fact (month);
