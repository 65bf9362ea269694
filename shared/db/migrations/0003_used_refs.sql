-- A partner's melding_ref stays used after its melding is purged: a re-used ref gets
-- `duplicate_ref`, never a new melding that the partner's system would confuse with
-- the old one. Only a hash of the ref is kept, and nothing that links it to a youth.
CREATE TABLE melding_ref_used (
    partner_id text NOT NULL,
    ref_hash   bytea NOT NULL,
    PRIMARY KEY (partner_id, ref_hash)
);

CREATE FUNCTION remember_purged_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO melding_ref_used (partner_id, ref_hash)
    VALUES (OLD.partner_id, sha256(convert_to(OLD.melding_ref, 'UTF8')))
    ON CONFLICT DO NOTHING;
    RETURN OLD;
END;
$$;

CREATE TRIGGER melding_purged_ref
    AFTER DELETE ON melding
    FOR EACH ROW EXECUTE FUNCTION remember_purged_ref();
