-- The web portal (services/portal): its accounts and sessions, and its read model of
-- what it sent and heard on behalf of the partners on channel "portal". Only the
-- portal reads and writes these tables; for the index they are a partner's system.

CREATE TABLE portal_user (
    id                  uuid PRIMARY KEY,
    partner_id          text NOT NULL,
    email               text NOT NULL,
    name                text NOT NULL DEFAULT '',
    phone               text NOT NULL DEFAULT '',
    role                text NOT NULL CHECK (role IN ('professional', 'org_admin')),
    status              text NOT NULL DEFAULT 'invited'
                        CHECK (status IN ('invited', 'active', 'disabled')),
    password_hash       text,
    totp_secret         text,
    totp_last_step      bigint,              -- a code is accepted once (no replay)
    activation_hash     text UNIQUE,         -- sha256 of the one-time activation token
    activation_expires  timestamptz,
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    invited_by          uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz
);
CREATE UNIQUE INDEX portal_user_email ON portal_user (lower(email));
CREATE INDEX portal_user_partner ON portal_user (partner_id);

-- A login; the cookie holds the token, the row only its sha256 (a leaked table gives
-- no session). Shared by every replica.
CREATE TABLE portal_session (
    token_hash  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES portal_user (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_session_user ON portal_session (user_id);
CREATE INDEX portal_session_last_seen ON portal_session (last_seen);

-- Every inbound message the portal sends for a partner: its own outbox (published by
-- the portal's own broker login, so no other service may relay it) and the outcome
-- its receipt brought.
CREATE TABLE portal_message (
    message_id      uuid PRIMARY KEY,
    partner_id      text NOT NULL,
    actor           uuid NOT NULL,
    routing_key     text NOT NULL,
    melding_ref     text,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    receipt_status  text,                    -- accepted | rejected | duplicate
    receipt_errors  jsonb NOT NULL DEFAULT '[]'::jsonb,
    answered_at     timestamptz
);
CREATE INDEX portal_message_unpublished ON portal_message (created_at)
    WHERE published_at IS NULL;
CREATE INDEX portal_message_melding ON portal_message (partner_id, melding_ref);

-- A melding as its own organisation entered it (the youth's identity is the
-- partner's own record: shown to that organisation only) and what it learnt since.
-- Kept no longer than the index keeps the melding (services/portal/readmodel.py).
CREATE TABLE portal_melding (
    partner_id      text NOT NULL,
    melding_ref     text NOT NULL,
    created_by      uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'active', 'rejected', 'withdrawn', 'ended')),
    bsn             text,
    surname         text,
    sex             text,
    birth_date      date,                    -- NULL with the rest once forgotten
    municipality    text NOT NULL,
    -- The identity is forgotten when the index purges the melding at once
    -- (unjustified, 23rd birthday, death, erasure); the row goes after the archive.
    identity_forgotten boolean NOT NULL DEFAULT false,
    reporter        jsonb NOT NULL,
    reported_at     timestamptz NOT NULL,
    inform          text[] NOT NULL DEFAULT '{}',
    informed        text[],
    informed_on     date,
    deferred_reason text,
    reminded_at     timestamptz,
    ended_reason    text,                    -- risk_ended | unjustified | expired | ...
    ended_at        timestamptz,
    match_id        uuid,
    lead            jsonb,
    lead_escalated  boolean NOT NULL DEFAULT false,
    match_ended_at  timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, melding_ref)
);
CREATE INDEX portal_melding_creator ON portal_melding (created_by);

-- The counterparts of a melding's current match, as the notices named them.
CREATE TABLE portal_counterpart (
    partner_id      text NOT NULL,
    melding_ref     text NOT NULL,
    match_id        uuid NOT NULL,
    counterpart     text NOT NULL,
    organisation    text NOT NULL,
    sector          text NOT NULL,
    reporter        jsonb NOT NULL,
    registered_at   timestamptz,
    archived        boolean NOT NULL DEFAULT false,
    family_relation text,                    -- set for a family match (contract §8)
    PRIMARY KEY (partner_id, melding_ref, match_id, counterpart),
    FOREIGN KEY (partner_id, melding_ref)
        REFERENCES portal_melding (partner_id, melding_ref) ON DELETE CASCADE
);

-- Every message read from a portal partner's mailbox, once (by its stable
-- message_id): the inbox that makes a redelivery harmless, and the timeline of a
-- melding.
CREATE TABLE portal_notice (
    partner_id   text NOT NULL,
    message_id   text NOT NULL,
    melding_ref  text,
    type         text NOT NULL,
    body         jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, message_id)
);
CREATE INDEX portal_notice_melding ON portal_notice (partner_id, melding_ref);
