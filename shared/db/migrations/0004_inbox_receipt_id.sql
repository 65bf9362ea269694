-- The message_id of the receipt that answers this handling of the message: a fresh
-- one per inbox row. A message_id re-sent after its row was purged (past the dedup
-- window) is handled anew, and its answer must not carry the id of the earlier one,
-- which the partner would drop as a duplicate delivery. A receipt published twice
-- keeps its id: the outbox row holds it.
-- Rows from before this column keep NULL (no table rewrite): their receipts were
-- written long ago, and nothing reads the id after the claim.
ALTER TABLE inbox ADD COLUMN receipt_id uuid;
ALTER TABLE inbox ALTER COLUMN receipt_id SET DEFAULT gen_random_uuid();
