-- Admin listings (GET /v1/admin/users, /restaurants, /drivers), newest
-- first by (created_at_ms, id) with keyset paging: an index per listing's
-- order, and one per role for the role filter (drivers are users with
-- role 'driver'). Orders have theirs since 0001.
CREATE INDEX users_created ON users (created_at_ms, id);
CREATE INDEX users_role_created ON users (role, created_at_ms, id);
CREATE INDEX restaurants_created ON restaurants (created_at_ms, id);
