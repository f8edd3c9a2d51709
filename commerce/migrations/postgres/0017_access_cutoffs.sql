-- A logout (issue 15): access tokens of the user issued before this time
-- (Unix ms) are refused on every node, also after a restart, until they
-- would have expired anyway. NULL: the user never logged out.
ALTER TABLE users ADD COLUMN tokens_valid_from_ms BIGINT;
