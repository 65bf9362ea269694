-- The portal user who acted (header x-vi-actor, contract §9) beside the partner it
-- acted for (actor). NULL for actions of a partner's own system, of the operator and
-- of the time rules. No table rewrite: existing rows keep NULL.
ALTER TABLE audit_log ADD COLUMN portal_user text;
