-- One search, as pgbench runs it: a random point in the 30 × 30 km
-- Gothenburg box, one of ten terms ('' = everything near), restaurants
-- whose delivery radius covers the point, nearest 20 first. Matching is
-- substring (LIKE '%term%') on the restaurant's name and cuisines and its
-- available dishes' names; the box is the widest radius (15 km).
\set lat random(57574000, 57844000)
\set lng random(11724000, 12225000)
\set t random(1, 10)
SELECT id, name, d FROM (
  SELECT r.id, r.name, r.delivery_radius_m,
         2 * 6371008.8 * asin(sqrt(
           power(sin(radians(r.lat - :lat / 1e6) / 2), 2)
           + cos(radians(:lat / 1e6)) * cos(radians(r.lat))
             * power(sin(radians(r.lng - :lng / 1e6) / 2), 2))) AS d,
         (ARRAY['pizza', 'sushi', 'thai', 'burger', 'curry', 'kebab', 'ramen', 'taco', '', ''])[:t] AS w
  FROM restaurants r
  WHERE r.lat BETWEEN :lat / 1e6 - 0.136 AND :lat / 1e6 + 0.136
    AND r.lng BETWEEN :lng / 1e6 - 0.253 AND :lng / 1e6 + 0.253
) r
WHERE d <= delivery_radius_m
  AND (w = ''
       OR r.id IN (SELECT c.id FROM restaurants c
                   WHERE lower(c.name) LIKE '%' || w || '%' OR lower(c.cuisines_json) LIKE '%' || w || '%')
       OR r.id IN (SELECT m.restaurant_id FROM menu_items m
                   WHERE m.available = 1 AND lower(m.name) LIKE '%' || w || '%'))
ORDER BY d
LIMIT 20;
