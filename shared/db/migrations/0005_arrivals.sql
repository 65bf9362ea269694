-- One row per publish of a partner message that reached ingest (an *arrival*), so
-- that a broker redelivery of that publish is bound to it instead of being taken for
-- a new publish of the same message_id. `acked`: ingest's ack of its delivery was
-- confirmed by the broker, so no delivery of this publish can come again.
CREATE TABLE arrival (
    id          uuid PRIMARY KEY,
    partner_id  text NOT NULL,
    message_id  text NOT NULL,
    acked       boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now()
);
-- A redelivery looks for the arrivals of its message_id that may still be delivered.
CREATE INDEX arrival_unacked ON arrival (partner_id, message_id) WHERE NOT acked;
CREATE INDEX arrival_received_at ON arrival (received_at);

-- The arrivals whose one answer (receipt or `duplicate`) was written, inserted in the
-- transaction that writes it. A table of its own, so that answering (in the matcher's
-- long batch transactions) and marking acknowledged (ingest, after its ack) never
-- wait for each other's row locks.
CREATE TABLE arrival_answered (
    arrival_id  uuid PRIMARY KEY,
    answered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arrival_answered_at ON arrival_answered (answered_at);
