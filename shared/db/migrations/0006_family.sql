-- Family match (contract §8). What the population register says about a youth's
-- family: the parents and the residential address, each only as a keyed hash
-- (shared/pseudonym.py). Newer facts replace older ones; they go with the youth.
CREATE TABLE family_facts (
    youth_id       bigint PRIMARY KEY REFERENCES youth (id) ON DELETE CASCADE,
    parent_hashes  bytea[] NOT NULL,
    address_hash   bytea,
    institutional  boolean NOT NULL DEFAULT false,
    received_at    timestamptz NOT NULL
);
CREATE INDEX family_facts_parents ON family_facts USING gin (parent_hashes);
CREATE INDEX family_facts_address ON family_facts (address_hash) WHERE address_hash IS NOT NULL;

-- A person.lookup not answered yet. The BSN is kept sealed with the pseudonym key,
-- only to ask again (at most once a day, by the retention sweep); the row goes when
-- the facts arrive, when the youth has no active melding any more, or with the youth.
CREATE TABLE family_lookup (
    youth_id    bigint PRIMARY KEY REFERENCES youth (id) ON DELETE CASCADE,
    lookup_id   uuid NOT NULL UNIQUE,
    sealed_bsn  bytea NOT NULL,
    sent_at     timestamptz NOT NULL
);
CREATE INDEX family_lookup_sent_at ON family_lookup (sent_at);

-- A family match: two active meldingen of different partners on different youths of
-- one family. The pair is unique (lower melding id first), so it is signalled once
-- whichever transaction finds it first.
CREATE TABLE family_match (
    id            uuid PRIMARY KEY,
    melding_low   bigint NOT NULL REFERENCES melding (id) ON DELETE CASCADE,
    melding_high  bigint NOT NULL REFERENCES melding (id) ON DELETE CASCADE,
    relation      text NOT NULL CHECK (relation IN ('parent', 'address')),
    formed_at     timestamptz NOT NULL,
    CHECK (melding_low < melding_high),
    UNIQUE (melding_low, melding_high)
);
CREATE INDEX family_match_high ON family_match (melding_high);

-- Statistics count family matches per relation.
ALTER TABLE stats_fact DROP CONSTRAINT stats_fact_kind_check;
ALTER TABLE stats_fact ADD CONSTRAINT stats_fact_kind_check CHECK (
    kind IN ('registered', 'matched', 'informed', 'deferred', 'family_parent', 'family_address')
);
