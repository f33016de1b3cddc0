-- Vector tiles (gis/tiles.py): the incidents of a tile's cells counted from an index alone.
--
-- A tile counts the incidents routed to its cells, by the level's routing column, through the filters
-- of gis.tiles.FILTER_SQL (reported_at, category, status, due_at), and tallies open and overdue ones
-- (status, due_at). With every column it reads in the index, the count is an index-only scan; the plain
-- index on the routing column (004) made it a heap visit per incident, and for districts and streets the
-- planner chose a parallel scan of the whole table instead. Measured on the Zhengzhou demo (100,000
-- incidents; EXPLAIN ANALYZE, 2 shared cores): a level-0 tile at z13 (3 districts, 38,969 incidents)
-- 49.8 ms → 8.7 ms (10,526 shared buffers of the table → Index Only Scan, 0 heap fetches); p95 over the
-- map's tiles 38.6 → 9.2 ms. reported_at comes second in the key so that `since` is a range of it.
create index incident_tile_district_idx on incident (district_id, reported_at) include (status, category, due_at);
create index incident_tile_street_idx on incident (street_id, reported_at) include (status, category, due_at);
create index incident_tile_community_idx on incident (community_id, reported_at) include (status, category, due_at);
create index incident_tile_grid_idx on incident (grid_id, reported_at) include (status, category, due_at);
