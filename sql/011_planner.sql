-- The planners' boundary editor (issue 7): drafts are edited in the browser and in QGIS over PostGIS.
--
-- QGIS writes plain SQL, so what the editor relies on is kept here, by triggers, for every writer alike:
-- the derived columns (level, parent_id), a revision per cell for optimistic locking, and a log of every
-- change to a cell: who, when, what and why. area_m2 needs nothing: it is a generated column (002).
--
-- BEFORE row triggers fire in the order of their names, and that order matters; the names say it:
--   grid_cell_10_drafts_only   (002) an active or retired version refuses every change, before any work
--   grid_cell_20_derive        level from the code, parent from the outline
--   grid_cell_30_code_length   (002) the code fits the level, given or derived
--   grid_cell_40_revision      last, so that a derived change counts too
--   grid_cell_50_keep_children a cell with children is not deleted
alter trigger grid_cell_drafts_only on grid_cell rename to grid_cell_10_drafts_only;
alter trigger grid_cell_code_length on grid_cell rename to grid_cell_30_code_length;

-- No Polygon-to-MultiPolygon step here: the column's type, geometry(MultiPolygon, 4326), refuses a Polygon
-- before any trigger runs. QGIS promotes what it writes to the layer's MultiPolygon itself; SQL writers
-- wrap it in ST_Multi. Nor is an invalid outline repaired: grid_cell_geom_check keeps refusing it.


-- --- level and parent ----------------------------------------------------------------------------------

-- The cell one level up in the same version that holds the largest share of `geom`; ties go to the lower
-- code. The rule of gis/grid_import.py, without its 50 % minimum: a planner part-way through moving a
-- boundary is not stopped, and `gridmap grid check` reports the cell spilling over its parent.
-- Null for a district, or when no cell one level up touches `geom`. `p_cell` is never its own parent:
-- while its level changes, the row as it was is still one level up.
create function grid_cell_best_parent(p_cell bigint, p_version integer, p_level smallint, p_geom geometry)
returns bigint language sql stable as $$
    select p.id
      from grid_cell p
     where p.version_id = p_version and p.level = p_level - 1 and p.id <> p_cell
       and p.geom && p_geom and ST_Intersects(p.geom, p_geom)
     order by case when ST_Covers(p.geom, p_geom) then 1.0
                   else ST_Area(ST_Intersection(p.geom, p_geom)::geography) / ST_Area(p_geom::geography)
              end desc,
              p.code
     limit 1
$$;

-- A QGIS user sets code, name and the outline; the level and the parent follow.
--   level:  from the code's length when none is given, or when the code changed and the level was not
--           changed with it. A level given is kept, so that grid_cell_30_code_length refuses a code that
--           does not fit it (an import says which level it writes).
--   parent: found by grid_cell_best_parent when none is given, or when the outline or the level changed and
--           the same statement did not set parent_id as well. Clearing parent_id asks for it to be found.
-- A cell's children keep their parent when its outline changes: a planner moves a boundary, the cells
-- inside move with their own edits, and `gridmap grid check` shows what no longer fits.
create function grid_cell_derive() returns trigger language plpgsql as $$
declare
    explicit_parent boolean := tg_op = 'UPDATE' and new.parent_id is distinct from old.parent_id;
    by_length smallint;
begin
    if new.code is null then
        return new;  -- the NOT NULL constraint says what is wrong
    end if;
    if new.level is null
       or (tg_op = 'UPDATE' and new.code is distinct from old.code and new.level is not distinct from old.level) then
        select level into by_length from grid_level where code_length = length(new.code);
        if by_length is not null then
            new.level := by_length;
        elsif new.level is null then
            raise exception 'cell code % has % digits; codes have %', new.code, length(new.code),
                (select string_agg(format('%s (level %s)', code_length, level), ', ' order by level) from grid_level)
                using errcode = 'check_violation';
        end if;  -- else the level stays, and grid_cell_30_code_length refuses the code
    end if;

    if new.parent_id is null
       or (tg_op = 'UPDATE' and not explicit_parent
           and (new.geom is distinct from old.geom or new.level is distinct from old.level)) then
        if new.level = 0 then
            new.parent_id := null;
            return new;
        end if;
        if new.geom is null then
            return new;  -- the NOT NULL constraint says what is wrong
        end if;
        -- Refused as the geometry check refuses it (same message, SQLSTATE and constraint), with the reason
        -- added: left alone, the missing parent could be what is reported, or GEOS could throw on it.
        if not ST_IsValid(new.geom) or ST_IsEmpty(new.geom) then
            raise exception 'new row for relation "grid_cell" violates check constraint "grid_cell_geom_check"'
                using errcode = 'check_violation', table = 'grid_cell', constraint = 'grid_cell_geom_check',
                      detail = format('cell %s: %s', new.code, case when ST_IsEmpty(new.geom) then 'empty geometry'
                                                                     else ST_IsValidReason(new.geom) end);
        end if;
        new.parent_id := grid_cell_best_parent(new.id, new.version_id, new.level, new.geom);
        if new.parent_id is null then
            raise exception 'cell % lies outside every level-% cell of version %: draw it inside its parent, '
                            'or set parent_id', new.code, new.level - 1, new.version_id
                using errcode = 'check_violation', table = 'grid_cell', constraint = 'grid_cell_check';
        end if;
    end if;
    return new;
end $$;
create trigger grid_cell_20_derive before insert or update on grid_cell
    for each row execute function grid_cell_derive();

-- grid_cell_parts_update (003) fires on `update of geom, level, version_id`: when the statement names those
-- columns. A level derived from a new code is not named, so its pieces follow it here.
create trigger grid_cell_parts_follow_level after update of code on grid_cell
    for each row when (old.level is distinct from new.level) execute function grid_cell_parts_follow();

-- A cell with children is not deleted: they would point at nothing (the foreign key would refuse it too,
-- without saying why). Children deleted earlier in the same statement no longer count, but the order in
-- which one statement visits rows is not defined: delete a level at a time, the deepest first.
create function grid_cell_keep_children() returns trigger language plpgsql as $$
declare
    children bigint;
begin
    select count(*) into children from grid_cell where parent_id = old.id;
    if children > 0 then
        raise exception 'cell % of version % has % child cell(s): delete them, or give them another parent, first',
            old.code, old.version_id, children
            using errcode = 'foreign_key_violation', table = 'grid_cell';
    end if;
    return old;
end $$;
create trigger grid_cell_50_keep_children before delete on grid_cell
    for each row execute function grid_cell_keep_children();


-- --- revision -----------------------------------------------------------------------------------------

-- The browser editor's optimistic lock: a save names the revision it edited, and a cell changed since is
-- refused. The database owns the count: a value written to it is ignored.
alter table grid_cell add column revision integer not null default 1;

create function grid_cell_count_revision() returns trigger language plpgsql as $$
declare
    was grid_cell := old;
    will grid_cell := new;
begin
    if tg_op = 'INSERT' then
        new.revision := 1;
        return new;
    end if;
    -- Everything but the revision and the generated columns, which NEW does not hold yet, is compared;
    -- a column added later counts without a change here. (PostGIS's = on geometries is exact.)
    was.revision := 0;        will.revision := 0;
    was.area_m2 := null;      will.area_m2 := null;
    was.parent_level := null; will.parent_level := null;
    new.revision := old.revision + case when was is distinct from will then 1 else 0 end;
    return new;
end $$;
create trigger grid_cell_40_revision before insert or update on grid_cell
    for each row execute function grid_cell_count_revision();


-- --- the edit log -------------------------------------------------------------------------------------

-- Who, when, what and why of every change to a cell of a draft (imports included). Who: the setting
-- gridmap.actor, or else the database user, which is what a QGIS edit has. Why: gridmap.reason. What kind of
-- edit: gridmap.operation ('split', 'merge', 'move-vertex', ... from the browser; none from QGIS).
create table grid_edit (
    id         bigint generated always as identity primary key,
    version_id integer not null references grid_version (id),
    at         timestamptz not null default now(),
    actor      text not null,
    operation  text,
    action     text not null check (action in ('insert', 'update', 'delete')),
    cell_id    bigint,             -- no foreign key: the log outlives the cells it tells of
    cell_code  text,
    cell_level smallint,
    reason     text,
    before     jsonb,
    after      jsonb
);
create index grid_edit_version_idx on grid_edit (version_id, id);

-- The log is history: it is added to, never changed.
create function grid_edit_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the grid edit log is append-only' using errcode = 'insufficient_privilege';
end $$;
create trigger grid_edit_append_only before update or delete on grid_edit
    for each row execute function grid_edit_append_only();

-- A cell as the log shows it. The outline (GeoJSON) only when asked: an update shows it when it changed, a
-- delete always; an insert never, so that an import of 25,000 cells does not copy them all. Every outline a
-- cell ever had is still at hand: the current one in grid_cell, the earlier ones in the `before` of the
-- updates and of the delete.
create function grid_edit_fields(c grid_cell, with_geom boolean) returns jsonb language sql stable as $$
    select jsonb_build_object(
               'code', c.code, 'name', c.name, 'kind', c.kind, 'population', c.population, 'level', c.level,
               'parent', (select p.code from grid_cell p where p.id = c.parent_id),
               'revision', c.revision, 'area_m2', round(c.area_m2::numeric, 1), 'attributes', c.attributes)
           || case when with_geom then jsonb_build_object('geom', ST_AsGeoJSON(c.geom)::jsonb) else '{}' end
$$;

-- The members of `a` whose values differ in `b`.
create function grid_edit_changed(a jsonb, b jsonb) returns jsonb language sql immutable as $$
    select coalesce(jsonb_object_agg(key, value), '{}') from jsonb_each(a) where value is distinct from b -> key
$$;

-- One statement, one insert into the log, from the statement's transition tables: an import of 25,000 cells
-- writes its log rows in one go (row by row, the log made a plain insert of the demo's unit grids nearly
-- twice as slow).
create function grid_cell_log() returns trigger language plpgsql as $$
declare
    who text := coalesce(nullif(current_setting('gridmap.actor', true), ''), session_user);
    what text := nullif(current_setting('gridmap.operation', true), '');
    why text := nullif(current_setting('gridmap.reason', true), '');
begin
    if tg_op = 'INSERT' then
        insert into grid_edit (version_id, actor, operation, action, cell_id, cell_code, cell_level, reason, after)
        select n.version_id, who, what, 'insert', n.id, n.code, n.level, why, grid_edit_fields(n, false)
          from new_cells n
         order by n.id;
    elsif tg_op = 'DELETE' then
        insert into grid_edit (version_id, actor, operation, action, cell_id, cell_code, cell_level, reason, before)
        select o.version_id, who, what, 'delete', o.id, o.code, o.level, why, grid_edit_fields(o, true)
          from old_cells o
         order by o.id;
    else
        -- An update that changed nothing (QGIS may write a value back as it was) left the revision alone:
        -- no entry. The others show the fields that changed, the outline only when it did.
        insert into grid_edit (version_id, actor, operation, action, cell_id, cell_code, cell_level, reason,
                               before, after)
        select n.version_id, who, what, 'update', n.id, n.code, n.level, why,
               grid_edit_changed(f.was, f.will), grid_edit_changed(f.will, f.was)
          from old_cells o
          join new_cells n on n.id = o.id
         cross join lateral (select grid_edit_fields(o, o.geom is distinct from n.geom) as was,
                                    grid_edit_fields(n, o.geom is distinct from n.geom) as will) f
         where n.revision <> o.revision
         order by n.id;
    end if;
    return null;
end $$;
-- A trigger with transition tables serves one event, hence three.
create trigger grid_cell_log_insert after insert on grid_cell
    referencing new table as new_cells
    for each statement execute function grid_cell_log();
create trigger grid_cell_log_update after update on grid_cell
    referencing old table as old_cells new table as new_cells
    for each statement execute function grid_cell_log();
create trigger grid_cell_log_delete after delete on grid_cell
    referencing old table as old_cells
    for each statement execute function grid_cell_log();
