-- One outbox for the services and the portal. A row may carry AMQP headers, and names
-- the sender whose relay publishes it: NULL for the services (any service's relay),
-- 'portal' for the portal's requests (only the portal's relay, which publishes them
-- with its own broker login as user_id). A portal request has no AMQP type.
ALTER TABLE outbox
    ADD COLUMN headers jsonb,
    ADD COLUMN sender  text,
    ALTER COLUMN message_type DROP NOT NULL;
-- The portal's fast path finds its row by message_id; the services' rows are not
-- indexed, so their inserts cost nothing more.
CREATE INDEX outbox_sender_message ON outbox (sender, message_id) WHERE sender IS NOT NULL;

-- Requests the portal wrote but had not yet published move to the outbox, with the
-- headers the portal put on them; their age is kept, so the relay sends them at once.
INSERT INTO outbox (message_id, exchange, routing_key, body, message_type, headers,
                    sender, created_at)
SELECT message_id, 'vi.inbound', routing_key, body, NULL,
       CASE WHEN coordinator IS NULL
            THEN jsonb_build_object('x-vi-on-behalf-of', partner_id, 'x-vi-actor', actor::text)
            ELSE jsonb_build_object('x-vi-coordinator', coordinator, 'x-vi-actor', actor::text)
       END,
       'portal', created_at
FROM portal_message
WHERE published_at IS NULL
ORDER BY created_at;

-- portal_message stays the portal's record of what it sent and what came back.
DROP INDEX portal_message_unpublished;
ALTER TABLE portal_message DROP COLUMN published_at;
