-- PostGIS and the bookkeeping every later file relies on.
create extension if not exists postgis;
