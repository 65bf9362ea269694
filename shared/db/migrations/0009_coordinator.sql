-- The municipal match coordinator in the portal (docs/portal.md, "The coordinator").
--
-- A coordinator is a portal account of no partner: partner_id is 'portal', the id of
-- the portal's own mailbox where the answers to its requests arrive (contract §9: no
-- partner may have that id), and municipalities holds the codes it coordinates.
ALTER TABLE portal_user ADD COLUMN municipalities text[] NOT NULL DEFAULT '{}';
ALTER TABLE portal_user DROP CONSTRAINT portal_user_role_check;
ALTER TABLE portal_user ADD CONSTRAINT portal_user_role_check
    CHECK (role IN ('professional', 'org_admin', 'coordinator'));
ALTER TABLE portal_user ADD CONSTRAINT portal_user_coordinator_scope CHECK (
    CASE WHEN role = 'coordinator'
         THEN partner_id = 'portal' AND cardinality(municipalities) > 0
         ELSE partner_id <> 'portal' AND cardinality(municipalities) = 0 END
);

-- A coordinator's request (regie.assign) is published without x-vi-on-behalf-of and
-- with x-vi-coordinator: the code is kept with the record of what the portal sent.
ALTER TABLE portal_message ADD COLUMN coordinator text;

-- What the coordinator's pages read of the index: no read model of its own, but
-- views on the index's tables that leave out the youth's identity (no identity hash,
-- no birth date). What the index purges is gone from them at once.
CREATE VIEW coordinator_match AS
    SELECT g.id AS match_id, y.municipality, g.formed_at, g.ended_at,
           g.lead_melding_id, g.lead_since, g.lead_needed_since, g.escalated_at
    FROM match_group g JOIN youth y ON y.id = g.youth_id;

CREATE VIEW coordinator_member AS
    SELECT mm.match_id, m.id AS melding_id, m.partner_id, m.state, m.registered_at,
           m.reporter_name, m.reporter_email, m.reporter_phone
    FROM match_member mm JOIN melding m ON m.id = mm.melding_id;

-- Participation per organisation: meldingen the index still keeps, by the youth's
-- municipality (no youth column).
CREATE VIEW coordinator_melding AS
    SELECT m.id AS melding_id, m.partner_id, y.municipality, m.registered_at,
           m.ended_at, (m.informed IS NOT NULL) AS informed,
           EXISTS (SELECT 1 FROM match_member mm WHERE mm.melding_id = m.id) AS matched
    FROM melding m JOIN youth y ON y.id = m.youth_id;

-- A youth who moved into a municipality (person.moved): the latest move only. Kept by
-- a trigger, so the matcher needs no portal knowledge; it goes with the youth.
CREATE TABLE coordinator_arrival (
    youth_id      bigint PRIMARY KEY REFERENCES youth (id) ON DELETE CASCADE,
    municipality  text NOT NULL,
    moved_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION coordinator_note_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO coordinator_arrival (youth_id, municipality, moved_at)
    VALUES (NEW.id, NEW.municipality, now())
    ON CONFLICT (youth_id) DO UPDATE
        SET municipality = EXCLUDED.municipality, moved_at = EXCLUDED.moved_at;
    RETURN NEW;
END $$;

CREATE TRIGGER youth_moved_in AFTER UPDATE OF municipality ON youth
    FOR EACH ROW WHEN (OLD.municipality IS DISTINCT FROM NEW.municipality)
    EXECUTE FUNCTION coordinator_note_arrival();

CREATE VIEW coordinator_match_arrival AS
    SELECT g.id AS match_id, a.municipality, a.moved_at
    FROM match_group g JOIN coordinator_arrival a ON a.youth_id = g.youth_id;

-- "Afgestemd": the coordinator recorded that the professionals of a match have been in
-- touch. Only who and when, never text about the youth; it goes with the match, and
-- so with the youth.
CREATE TABLE coordinator_followup (
    match_id     uuid PRIMARY KEY REFERENCES match_group (id) ON DELETE CASCADE,
    recorded_by  uuid NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
