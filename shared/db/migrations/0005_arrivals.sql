-- One row per publish of a partner message that reached ingest (an *arrival*), so
-- that a broker redelivery of that publish is bound to it instead of being taken for
-- a new publish of the same message_id. `answered`: its one answer (receipt or
-- `duplicate`) was written; `acked`: ingest's ack of its delivery was confirmed by
-- the broker, so no delivery of this publish can come again. Rows expire with the
-- inbox (dedup window).
CREATE TABLE arrival (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    partner_id  text NOT NULL,
    message_id  text NOT NULL,
    answered    boolean NOT NULL DEFAULT false,
    acked       boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now()
);
-- A redelivery looks for the arrivals of its message_id that may still be delivered.
CREATE INDEX arrival_unacked ON arrival (partner_id, message_id) WHERE NOT acked;
CREATE INDEX arrival_received_at ON arrival (received_at);
