-- Region config: one row, replaced by `verwijsindex region apply`; services poll the
-- revision and reload when it changes.
CREATE TABLE region_config (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    revision    bigint NOT NULL,
    config      jsonb NOT NULL,
    digest      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Inbox: one row per handled inbound message (idempotency key = partner + message_id).
CREATE TABLE inbox (
    partner_id  text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, message_id)
);
CREATE INDEX inbox_received_at ON inbox (received_at);

-- Outbox: messages written with the state change that caused them.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    message_id     uuid NOT NULL,
    exchange       text NOT NULL,
    routing_key    text NOT NULL,
    body           bytea NOT NULL,
    message_type   text NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_at ON outbox (created_at);

-- A youth, known only by a keyed hash of the identity (BSN, or surname + birth date +
-- sex). No BSN and no surname is stored.
CREATE TABLE youth (
    id            bigserial PRIMARY KEY,
    identity_hash bytea NOT NULL UNIQUE,
    has_bsn       boolean NOT NULL,
    birth_date    date NOT NULL,
    municipality  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX youth_birth_date ON youth (birth_date);

CREATE TABLE melding (
    id              bigserial PRIMARY KEY,
    youth_id        bigint NOT NULL REFERENCES youth (id) ON DELETE CASCADE,
    partner_id      text NOT NULL,
    melding_ref     text NOT NULL,
    state           text NOT NULL CHECK (state IN ('active', 'archived')),
    reported_at     timestamptz NOT NULL,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    reporter_name   text NOT NULL,
    reporter_email  text NOT NULL,
    reporter_phone  text,
    expires_on      date NOT NULL,          -- planned removal: 2 years after reported_at
    ended_at        timestamptz,
    end_reason      text,
    purge_on        date,                   -- archived meldingen: end of the archive term
    archive_signalled boolean NOT NULL DEFAULT false,
    inform_targets  text[] NOT NULL,
    informed        text[],
    informed_on     date,
    deferred_reason text,
    inform_reminded_at timestamptz,
    UNIQUE (partner_id, melding_ref)
);
-- An organisation has at most one active melding per youth.
CREATE UNIQUE INDEX melding_one_active_per_partner
    ON melding (youth_id, partner_id) WHERE state = 'active';
CREATE INDEX melding_youth ON melding (youth_id);
CREATE INDEX melding_active_expiry ON melding (expires_on) WHERE state = 'active';
CREATE INDEX melding_archive_purge ON melding (purge_on) WHERE state = 'archived';

-- A match group lives while the youth has two or more active meldingen of different
-- organisations; its id is the match_id partners see.
CREATE TABLE match_group (
    id                 uuid PRIMARY KEY,
    youth_id           bigint NOT NULL REFERENCES youth (id) ON DELETE CASCADE,
    formed_at          timestamptz NOT NULL,
    ended_at           timestamptz,
    lead_melding_id    bigint REFERENCES melding (id) ON DELETE SET NULL,
    lead_since         timestamptz,
    lead_needed_since  timestamptz,          -- start of the current lead deadline period
    escalated_at       timestamptz           -- escalation sent for the current period
);
CREATE UNIQUE INDEX match_group_open ON match_group (youth_id) WHERE ended_at IS NULL;

CREATE TABLE match_member (
    match_id   uuid NOT NULL REFERENCES match_group (id) ON DELETE CASCADE,
    melding_id bigint NOT NULL REFERENCES melding (id) ON DELETE CASCADE,
    PRIMARY KEY (match_id, melding_id)
);
CREATE INDEX match_member_melding ON match_member (melding_id);

-- Audit log (who registered, withdrew, was signalled, looked): apart from the
-- meldingen, pseudonymous, and with a retention of its own.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL,
    actor           text NOT NULL,          -- partner id, or 'system' / 'operator'
    melding_ref     text,
    youth_ref       text,                   -- one-way pseudonym, see shared/pseudonym.py
    match_id        uuid,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);

-- E-mails handed to SMTP (or written as .eml), by their stable Message-ID.
CREATE TABLE sent_email (
    message_id text PRIMARY KEY,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sent_email_sent_at ON sent_email (sent_at);
