-- The grid store: versions of a three-level partition, their cells, and the people answerable for them.
--
-- Versions work like MapIt's generations: an import makes a draft, activation makes it current and
-- retires the previous one; no version is ever overwritten, so history stays readable.

create table grid_version (
    id            integer generated always as identity primary key,
    status        text not null default 'draft' check (status in ('draft', 'active', 'retired')),
    note          text not null default '',          -- why this version exists
    source        text,                              -- file(s) it was imported from
    created_by    text not null,
    created_at    timestamptz not null default now(),
    activated_by  text,
    activated_at  timestamptz,
    retired_at    timestamptz,
    check ((status = 'draft') = (activated_at is null)),
    check ((status = 'retired') = (retired_at is not null)),
    check ((activated_at is null) = (activated_by is null))
);
-- At most one version is current.
create unique index grid_version_one_active on grid_version ((true)) where status = 'active';

-- Levels: 0 district/county (context), 1 street office/township, 2 community/village, 3 unit grid.
create table grid_level (
    level       smallint primary key,
    code_length smallint not null,
    name_zh     text not null,
    name_en     text not null
);
insert into grid_level values
    (0, 6,  '区县',      'district'),
    (1, 9,  '街道/乡镇', 'street'),
    (2, 12, '社区/村',   'community'),
    (3, 15, '单元网格',  'unit grid');

create table grid_cell (
    id           bigint generated always as identity primary key,
    version_id   integer not null references grid_version (id),
    level        smallint not null references grid_level (level),
    code         text not null,
    name         text not null check (name <> ''),
    parent_id    bigint,
    -- Derived, so that the foreign key below can demand a parent exactly one level up.
    parent_level smallint generated always as (case when level > 0 then level - 1 end) stored,
    kind         text not null default 'regular' check (kind in ('regular', 'special')),
    population   integer check (population >= 0),
    attributes   jsonb not null default '{}',
    geom         geometry(MultiPolygon, 4326) not null,
    -- Ellipsoidal area: exact in m², never in square degrees.
    area_m2      double precision generated always as (ST_Area(geom::geography)) stored,
    unique (version_id, code),
    unique (id, version_id, level),
    -- A cell's parent is in the same version and exactly one level up; only districts have none.
    foreign key (parent_id, version_id, parent_level) references grid_cell (id, version_id, level),
    check ((level = 0) = (parent_id is null)),
    check (code ~ '^[0-9]+$'),
    check (ST_IsValid(geom) and not ST_IsEmpty(geom))
);
create index grid_cell_geom_idx on grid_cell using gist (geom);
create index grid_cell_version_level_idx on grid_cell (version_id, level);
create index grid_cell_parent_idx on grid_cell (parent_id);

-- Code length follows the national layout: 6 county + 3 street + 3 community + 3 unit grid digits.
create function grid_cell_check_code() returns trigger language plpgsql as $$
declare
    expected smallint;
begin
    select code_length into expected from grid_level where level = new.level;
    if length(new.code) <> expected then
        raise exception 'cell code % has % digits; level % codes have %', new.code, length(new.code), new.level, expected
            using errcode = 'check_violation';
    end if;
    return new;
end $$;
create trigger grid_cell_code_length before insert or update of code, level on grid_cell
    for each row execute function grid_cell_check_code();

-- Only drafts can change: an active or retired version is history.
create function grid_cell_only_in_drafts() returns trigger language plpgsql as $$
declare
    v_status text;
begin
    select status into v_status from grid_version
     where id = case when tg_op = 'DELETE' then old.version_id else new.version_id end;
    if v_status <> 'draft' then
        raise exception 'grid version is %: only drafts can be edited', v_status using errcode = 'check_violation';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end $$;
create trigger grid_cell_drafts_only before insert or update or delete on grid_cell
    for each row execute function grid_cell_only_in_drafts();

-- Posts (岗位) that people hold on a cell.
create table post (
    code    text primary key,
    name_zh text not null,
    name_en text not null,
    level   smallint not null references grid_level (level)
);
insert into post values
    ('street_head',         '街道/乡镇负责人', 'street or township head', 1),
    ('community_secretary', '社区/村党组织书记', 'community party secretary', 2),
    ('community_director',  '社区/村委会主任', 'community director', 2),
    ('grid_head',           '网格长', 'grid head', 3),
    ('grid_worker',         '网格员', 'grid worker', 3);

create table staff (
    id    bigint generated always as identity primary key,
    name  text not null check (name <> ''),
    phone text not null check (phone ~ '^\+?[0-9][0-9 -]{4,19}$'),
    unique (name, phone)
);

create table cell_staff (
    cell_id  bigint not null references grid_cell (id) on delete cascade,
    staff_id bigint not null references staff (id),
    post     text not null references post (code),
    primary key (cell_id, staff_id, post)
);
create index cell_staff_staff_idx on cell_staff (staff_id);
