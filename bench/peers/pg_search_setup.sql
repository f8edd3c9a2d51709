-- The "do it yourself" search a team would put on its PostgreSQL: trigram
-- indexes for substring matching and a lat/lng box to narrow by distance,
-- over the same restaurants and menus hexdash holds (run against the
-- database of a hexdash that the `loadtest search` scenario seeded).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS peer_restaurants_name_trgm ON restaurants USING gin (lower(name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS peer_restaurants_cuisines_trgm ON restaurants USING gin (lower(cuisines_json) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS peer_menu_items_name_trgm ON menu_items USING gin (lower(name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS peer_restaurants_lat_lng ON restaurants (lat, lng);
ANALYZE restaurants;
ANALYZE menu_items;
