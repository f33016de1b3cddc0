-- Point-in-grid routing: which cell, at every level, answers for a point.
--
-- Cells are also kept cut into small pieces (ST_Subdivide), as MapIt does: a point test then touches a few
-- dozen vertices instead of the thousands of a large rural cell's outline. The pieces follow the cells by
-- trigger, so imports, repairs and edits made in QGIS all keep them right.

create table grid_cell_part (
    cell_id    bigint not null references grid_cell (id) on delete cascade,
    version_id integer not null,
    level      smallint not null,
    geom       geometry(Polygon, 4326) not null
);
create index grid_cell_part_geom_idx on grid_cell_part using gist (geom);
create index grid_cell_part_cell_idx on grid_cell_part (cell_id);

create function grid_cell_parts_follow() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        delete from grid_cell_part where cell_id = new.id;
    end if;
    insert into grid_cell_part (cell_id, version_id, level, geom)
        select new.id, new.version_id, new.level, ST_Subdivide(new.geom, 64);
    return null;
end $$;
create trigger grid_cell_parts_insert after insert on grid_cell
    for each row execute function grid_cell_parts_follow();
create trigger grid_cell_parts_update after update of geom, level, version_id on grid_cell
    for each row execute function grid_cell_parts_follow();

-- route_point(lon, lat[, version]): one row per level, district first, for the active version by default.
--
-- ST_Covers, so that a point on an edge is covered (MapIt PR #432). On a shared edge or vertex several unit
-- grids cover the point; the tie is broken explicitly: the deepest level covering the point chooses the
-- cell with the lowest code, and every level above is that cell's own ancestor — so the answer is the same
-- for every client and the levels never disagree. `candidates` lists every cell of the level that covers
-- the point (more than one: the point is on a shared edge). No row: the point is outside every cell.
create function route_point(p_lon double precision, p_lat double precision, p_version integer default null)
returns table (level smallint, cell_id bigint, code text, name text, candidates text[])
language sql stable as $$
    with recursive
    pt as (select ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326) as g),
    ver as (select coalesce(p_version, (select id from grid_version where status = 'active')) as id),
    hits as (
        select distinct c.id, c.level, c.code
          from grid_cell_part gp join grid_cell c on c.id = gp.cell_id, pt, ver
         where gp.version_id = ver.id and gp.geom && pt.g and ST_Covers(gp.geom, pt.g)),
    choice as (
        select h.id from hits h
         order by h.level desc, h.code      -- the documented tie-break: deepest level, then lowest code
         limit 1),
    chain as (
        select c.id, c.parent_id from grid_cell c join choice on c.id = choice.id
        union all
        select p.id, p.parent_id from grid_cell p join chain on p.id = chain.parent_id)
    select c.level, c.id, c.code, c.name,
           (select array_agg(h.code order by h.code) from hits h where h.level = c.level)
      from chain join grid_cell c on c.id = chain.id
     order by c.level
$$;

-- Cells stored before this file get their pieces now.
insert into grid_cell_part (cell_id, version_id, level, geom)
    select id, version_id, level, ST_Subdivide(geom, 64) from grid_cell;
