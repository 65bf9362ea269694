-- Failed portal logins per network address, within a window (services/portal/policy.py):
-- an account locks after a few failures, but one guess each at many accounts from one
-- address is stopped only by counting per address. A row outlives its window by at most
-- one housekeeping round.
CREATE TABLE portal_login_address (
    address text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures integer NOT NULL
);
CREATE INDEX portal_login_address_window ON portal_login_address (window_start);
