-- Open arrivals: one row per publish of a partner message that reached ingest and
-- may still be delivered again, so that a broker redelivery of that publish is bound
-- to it instead of being taken for a new publish of the same message_id. The row is
-- deleted once the broker confirmed ingest's ack: no delivery of the publish can come
-- again. The table holds only what is in flight (plus the rare row whose deletion was
-- lost, expired with the dedup window).
CREATE TABLE arrival (
    id          uuid PRIMARY KEY,
    partner_id  text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arrival_key ON arrival (partner_id, message_id);

-- The arrivals whose one answer (receipt or `duplicate`) was written, inserted in the
-- transaction that writes it, and kept for the dedup window: a copy of a command can
-- reach the matcher long after its arrival was closed (retried, parked, replayed).
CREATE TABLE arrival_answered (
    arrival_id  uuid PRIMARY KEY,
    answered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arrival_answered_at ON arrival_answered (answered_at);
