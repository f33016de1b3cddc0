-- Field reports (incidents), the event classification they are filed under, and their routing history.
--
-- An incident keeps its location as given (value and CRS) and as routed (EPSG:4326). Each routing is a row
-- of incident_routing that is never changed afterwards; the incident carries a copy of its latest one so
-- that lists, maps and statistics need no join.

-- The event classification (data/event_classes.csv, loaded by `gridmap db migrate`): the list of services.
create table department (
    code    text primary key check (code ~ '^[A-Z][A-Z0-9_]{1,15}$'),
    name_zh text not null,
    name_en text not null
);

create table event_class (
    code    text primary key check (code ~ '^[0-9]{2}$'),
    name_zh text not null,
    name_en text not null
);

create table event_subclass (
    code             text primary key check (code ~ '^[0-9]{4}$'),
    class_code       text not null references event_class (code),
    name_zh          text not null,
    name_en          text not null,
    description_zh   text not null default '',
    time_limit_hours numeric(6, 2) not null check (time_limit_hours > 0),
    time_basis       text not null check (time_basis in ('working', 'calendar')),
    emergency        boolean not null,
    department_code  text not null references department (code),
    in_service       boolean not null default true,  -- false: dropped from the file, kept for old incidents
    check (left(code, 2) = class_code)
);

create type routing_status as enum (
    'routed',       -- inside exactly one unit grid
    'shared_edge',  -- on an edge or vertex shared by several cells: the documented tie-break chose one
    'ambiguous',    -- inside one cell, but the GPS accuracy circle reaches others (listed as candidates)
    'snapped',      -- outside every cell, moved to the nearest one within the snapping distance
    'unrouted'      -- outside every cell and beyond the snapping distance: the district platform's queue
);

create table incident (
    id                bigint generated always as identity primary key,
    public_id         text not null unique,  -- set by trigger: <received date, China time>-<id>
    category          text not null references event_subclass (code),
    description       text not null default '' check (char_length(description) <= 4000),
    address           text not null default '' check (char_length(address) <= 500),
    given_x           double precision not null,
    given_y           double precision not null,
    given_crs         text not null,
    geom              geometry(Point, 4326) not null,
    accuracy_m        real check (accuracy_m >= 0),
    source            text not null check (source in ('field_app', 'open311', 'hotline', 'import')),
    reporter          jsonb not null default '{}',
    client_request_id text check (char_length(client_request_id) between 1 and 200),
    request_sha256    text,  -- the content a retry with the same client_request_id must repeat
    reported_at       timestamptz not null,
    received_at       timestamptz not null default now(),
    media_urls        text[] not null default '{}',
    status            text not null default 'reported' check (status in
                          ('reported', 'opened', 'voided', 'dispatched', 'in_progress', 'handled', 'closed')),
    status_changed_at timestamptz not null default now(),
    duplicate_of      bigint references incident (id),
    -- the latest routing, copied from incident_routing
    routing_id        bigint,
    version_id        integer references grid_version (id),
    routing_status    routing_status,
    district_id       bigint references grid_cell (id),
    street_id         bigint references grid_cell (id),
    community_id      bigint references grid_cell (id),
    grid_id           bigint references grid_cell (id),
    check (geom is null or ST_IsValid(geom))
);
create unique index incident_client_request_idx on incident (client_request_id);
create index incident_geom_idx on incident using gist (geom);
create index incident_reported_idx on incident (reported_at);
create index incident_category_idx on incident (category, reported_at);
create index incident_status_idx on incident (status);
create index incident_grid_idx on incident (grid_id);
create index incident_community_idx on incident (community_id);
create index incident_street_idx on incident (street_id);
create index incident_district_idx on incident (district_id);
create index incident_open_idx on incident (category, reported_at) where status not in ('closed', 'voided');

create function incident_public_id() returns trigger language plpgsql as $$
begin
    new.public_id := to_char(new.received_at at time zone 'Asia/Shanghai', 'YYYYMMDD') || '-'
                     || lpad(new.id::text, 7, '0');
    return new;
end $$;
create trigger incident_public_id before insert on incident
    for each row execute function incident_public_id();

create table incident_routing (
    id              bigint generated always as identity primary key,
    incident_id     bigint not null references incident (id),
    routed_at       timestamptz not null default now(),
    reason          text not null check (reason in ('intake', 'reroute', 'import')),
    version_id      integer references grid_version (id),
    status          routing_status not null,
    district_id     bigint references grid_cell (id),
    street_id       bigint references grid_cell (id),
    community_id    bigint references grid_cell (id),
    grid_id         bigint references grid_cell (id),
    candidates      text[] not null default '{}',  -- codes the point may belong to at the deepest level
    snap_distance_m double precision,
    staff           jsonb not null default '[]'    -- the responsible people when it was routed
);
create index incident_routing_incident_idx on incident_routing (incident_id, id);

create function incident_routing_is_history() returns trigger language plpgsql as $$
begin
    raise exception 'incident_routing is history: route again instead of changing routing %', old.id
        using errcode = 'restrict_violation';
end $$;
create trigger incident_routing_immutable before update or delete on incident_routing
    for each row execute function incident_routing_is_history();

-- A new routing becomes the incident's current one: one set-based update per statement, so that routing
-- 100,000 imported incidents in one INSERT costs one join rather than 100,000 updates.
create function incident_routing_current() returns trigger language plpgsql as $$
begin
    update incident i
       set routing_id = a.id, version_id = a.version_id, routing_status = a.status,
           district_id = a.district_id, street_id = a.street_id,
           community_id = a.community_id, grid_id = a.grid_id
      from (select distinct on (incident_id) * from added order by incident_id, id desc) a
     where i.id = a.incident_id;
    return null;
end $$;
create trigger incident_routing_current after insert on incident_routing
    referencing new table as added for each statement execute function incident_routing_current();

-- The functions on the intake path are PL/pgSQL rather than SQL: PL/pgSQL keeps its statements' plans for
-- the session, and planning these joins costs more than running them (2 ms against 0.8 ms, measured).

-- Distance in metres from a point to a geometry, on a plane around the point: x scaled by
-- cos(lat)·R·π/180 and y by R·π/180 (R = mean Earth radius). Within the few dozen metres it is used for
-- (snapping, GPS accuracy) it is within 0.5 % of the geodesic distance, and gis/point_index.py computes
-- exactly the same figure, so batch and single routing agree on which points snap.
create function local_distance_m(g geometry, lon double precision, lat double precision)
returns double precision language sql immutable parallel safe as $$
    select ST_Distance(
        ST_Scale(ST_Translate(g, -lon, -lat),
                 cos(radians(lat)) * 6371008.8 * pi() / 180, 6371008.8 * pi() / 180),
        'SRID=4326;POINT(0 0)'::geometry)
$$;

-- A bounding box in degrees certain to hold everything within `metres` of the point.
create function expand_metres(lon double precision, lat double precision, metres double precision)
returns geometry language sql immutable parallel safe as $$
    select ST_Expand(ST_SetSRID(ST_MakePoint(lon, lat), 4326),
                     metres / (6371008.8 * pi() / 180) / greatest(cos(radians(least(abs(lat) + 1, 89.9))), 0.01),
                     metres / (6371008.8 * pi() / 180))
$$;

-- route_report(lon, lat[, accuracy_m, snap_m, version]): where a report belongs.
--
-- Covered by a cell: route_point()'s answer (its tie-break); status shared_edge when several cells of the
-- deepest level cover the point, ambiguous when the GPS accuracy circle reaches other cells of that level.
-- Outside every cell: the nearest cell of the deepest level within snap_m metres (ties: lowest code), status
-- snapped; beyond that, unrouted, with the nearest district within 5 km as the queue that must deal with it
-- (none farther away: the city platform's queue).
-- cell_ids[level + 1] is the cell at each level (null where there is none).
create function route_report(p_lon double precision, p_lat double precision,
                             p_accuracy_m double precision default null,
                             p_snap_m double precision default 30,
                             p_version integer default null)
returns table (version_id integer, status routing_status, cell_ids bigint[], candidates text[],
               snap_distance_m double precision)
language plpgsql stable as $$
declare
    v integer := coalesce(p_version, (select id from grid_version where grid_version.status = 'active'));
    deepest smallint;
    hit record;
    chosen record;
    near record;
    others text[];
begin
    if v is null then
        return query select null::integer, 'unrouted'::routing_status, array[null, null, null, null]::bigint[],
                            '{}'::text[], null::double precision;
        return;
    end if;
    cell_ids := array[null, null, null, null]::bigint[];
    for hit in select * from route_point(p_lon, p_lat, v) loop  -- district first, deepest last
        cell_ids[hit.level + 1] := hit.cell_id;
        deepest := hit.level;
        chosen := hit;
    end loop;
    if deepest is not null then
        if cardinality(chosen.candidates) > 1 then
            return query select v, 'shared_edge'::routing_status, cell_ids, chosen.candidates, null::double precision;
            return;
        end if;
        if p_accuracy_m >= 0.001 then  -- below a millimetre a circle means nothing (and would underflow)
            select array_agg(distinct c.code order by c.code) into others
              from grid_cell_part gp join grid_cell c on c.id = gp.cell_id
             where gp.version_id = v and gp.level = deepest and c.code <> chosen.code
               and gp.geom && expand_metres(p_lon, p_lat, p_accuracy_m)
               and local_distance_m(gp.geom, p_lon, p_lat) <= p_accuracy_m;
            if others is not null then
                return query select v, 'ambiguous'::routing_status, cell_ids,
                                    (select array_agg(x order by x) from unnest(others || chosen.code) x),
                                    null::double precision;
                return;
            end if;
        end if;
        return query select v, 'routed'::routing_status, cell_ids, chosen.candidates, null::double precision;
        return;
    end if;

    deepest := (select max(c.level) from grid_cell c where c.version_id = v);
    if p_snap_m >= 0.001 then
        select c.id, c.code, d.dist into near
          from grid_cell_part gp join grid_cell c on c.id = gp.cell_id,
               lateral (select local_distance_m(gp.geom, p_lon, p_lat) as dist) d
         where gp.version_id = v and gp.level = deepest
           and gp.geom && expand_metres(p_lon, p_lat, p_snap_m) and d.dist <= p_snap_m
         order by d.dist, c.code
         limit 1;
        if near.id is not null then
            return query
                with recursive chain as (
                    select c.id, c.parent_id, c.level from grid_cell c where c.id = near.id
                    union all
                    select p.id, p.parent_id, p.level from grid_cell p join chain on p.id = chain.parent_id)
                select v, 'snapped'::routing_status,
                       array[(select id from chain where level = 0), (select id from chain where level = 1),
                             (select id from chain where level = 2), (select id from chain where level = 3)],
                       array[near.code], near.dist;
            return;
        end if;
    end if;
    -- the district platform within 5 km deals with it; farther away, nobody's cell: the city platform's queue
    return query
        select v, 'unrouted'::routing_status,
               array[(select c.id
                        from grid_cell_part gp join grid_cell c on c.id = gp.cell_id
                       where gp.version_id = v and gp.level = 0
                         and gp.geom && expand_metres(p_lon, p_lat, 5000)
                         and local_distance_m(gp.geom, p_lon, p_lat) <= 5000
                       order by local_distance_m(gp.geom, p_lon, p_lat), c.code
                       limit 1), null, null, null]::bigint[],
               '{}'::text[], null::double precision;
end $$;

-- The people answerable for a routing's cells, unit grid first: a snapshot kept with the routing.
-- Each cell's people as a card: the one place that says what a routing's staff snapshot holds.
create view cell_staff_card as
    select cs.cell_id,
           jsonb_agg(jsonb_build_object(
               'name', s.name, 'phone', s.phone, 'post', p.code, 'post_name_zh', p.name_zh,
               'post_name_en', p.name_en, 'level', c.level, 'cell_code', c.code)
             order by p.code, s.name) as staff
      from cell_staff cs
      join staff s on s.id = cs.staff_id
      join post p on p.code = cs.post
      join grid_cell c on c.id = cs.cell_id
     group by cs.cell_id;

-- The cards of a routing's cells, unit grid first.
create function responsible_staff(p_cell_ids bigint[]) returns jsonb language plpgsql stable as $$
begin
    return coalesce((select jsonb_agg(e.person order by c.level desc, e.n)
                       from cell_staff_card k
                       join grid_cell c on c.id = k.cell_id,
                            jsonb_array_elements(k.staff) with ordinality as e (person, n)
                      where k.cell_id = any (p_cell_ids)), '[]'::jsonb);
end $$;

-- Route (or route again) one incident and keep the answer as a new routing row; returns its id.
create function route_incident(p_incident bigint, p_reason text, p_snap_m double precision default 30,
                               p_version integer default null)
returns bigint language plpgsql as $$
declare
    routing bigint;
begin
    insert into incident_routing (incident_id, reason, version_id, status, district_id, street_id,
                                      community_id, grid_id, candidates, snap_distance_m, staff)
        select i.id, p_reason, r.version_id, r.status, r.cell_ids[1], r.cell_ids[2], r.cell_ids[3], r.cell_ids[4],
               r.candidates, r.snap_distance_m, responsible_staff(r.cell_ids)
          from incident i, route_report(ST_X(i.geom), ST_Y(i.geom), i.accuracy_m, p_snap_m, p_version) r
         where i.id = p_incident
        returning id into routing;
    return routing;
end $$;

-- The open incident a new report may repeat: same subclass, within p_radius_m metres and p_window of it,
-- reported before it; the nearest one — or the one that one repeats, while that is still open.
create function possible_duplicate_of(p_incident bigint, p_radius_m double precision, p_window interval)
returns bigint language plpgsql stable as $$
begin
    return (select coalesce((select f.id from incident f
                          where f.id = o.duplicate_of and f.status not in ('closed', 'voided')), o.id)
          from incident i
          join incident o on o.category = i.category and o.id < i.id
                         and o.status not in ('closed', 'voided')
                         and o.reported_at between i.reported_at - p_window and i.reported_at + p_window
                         and o.geom && expand_metres(ST_X(i.geom), ST_Y(i.geom), p_radius_m)
                         and ST_DWithin(o.geom::geography, i.geom::geography, p_radius_m)
         where i.id = p_incident
         order by ST_Distance(o.geom::geography, i.geom::geography), o.id
         limit 1);
end $$;

-- route_point() again, the same statement, in PL/pgSQL so that its plan is kept for the session.
create or replace function route_point(p_lon double precision, p_lat double precision, p_version integer default null)
returns table (level smallint, cell_id bigint, code text, name text, candidates text[])
language plpgsql stable as $$
#variable_conflict use_column
begin
    return query
    with recursive
    pt as (select ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326) as g),
    ver as (select coalesce(p_version, (select v.id from grid_version v where v.status = 'active')) as id),
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
     order by c.level;
end $$;

-- One report in: stored (or, for a client_request_id seen before, found), routed and linked to the open
-- incident it may repeat, in one call. Returns the incident's id, whether it is new, and the content hash
-- stored with it (a retry must match it).
create function submit_report(
    p_category text, p_description text, p_address text, p_x double precision, p_y double precision,
    p_crs text, p_lon double precision, p_lat double precision, p_accuracy_m real, p_source text,
    p_reporter jsonb, p_client_request_id text, p_sha256 text, p_reported_at timestamptz, p_media text[],
    p_snap_m double precision, p_duplicate_m double precision, p_duplicate_window interval)
returns table (incident_id bigint, created boolean, request_sha256 text)
language plpgsql as $$
#variable_conflict use_column
declare
    new_id bigint;
begin
    insert into incident (category, description, address, given_x, given_y, given_crs, geom, accuracy_m,
                          source, reporter, client_request_id, request_sha256, reported_at, media_urls)
    values (p_category, p_description, p_address, p_x, p_y, p_crs, ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326),
            p_accuracy_m, p_source, p_reporter, p_client_request_id, p_sha256, coalesce(p_reported_at, now()),
            p_media)
    on conflict (client_request_id) do nothing
    returning id into new_id;
    if new_id is null then
        return query select i.id, false, i.request_sha256 from incident i
                      where i.client_request_id = p_client_request_id;
        return;
    end if;
    perform route_incident(new_id, 'intake', p_snap_m);
    if p_duplicate_m > 0 and p_duplicate_window > interval '0' then
        update incident set duplicate_of = possible_duplicate_of(new_id, p_duplicate_m, p_duplicate_window)
         where id = new_id;
    end if;
    return query select new_id, true, p_sha256;
end $$;

-- Incidents as the API shows them, with their category, routing and cells, in the order of p_ids.
create function incident_rows(p_ids bigint[])
returns table (id bigint, public_id text, category text, category_name_zh text, category_name_en text,
               class_code text, department_code text, description text, address text,
               given_x double precision, given_y double precision, given_crs text,
               lon double precision, lat double precision, accuracy_m real, source text, reporter jsonb,
               client_request_id text, reported_at timestamptz, received_at timestamptz, media_urls text[],
               status text, status_changed_at timestamptz, duplicate_of text, version_id integer,
               routing_status text, candidates text[], snap_distance_m double precision,
               routed_at timestamptz, staff jsonb, cells json)
language plpgsql stable as $$
#variable_conflict use_column
begin
    return query
    select i.id, i.public_id, i.category, s.name_zh, s.name_en, s.class_code, s.department_code,
           i.description, i.address, i.given_x, i.given_y, i.given_crs, ST_X(i.geom), ST_Y(i.geom),
           i.accuracy_m, i.source, i.reporter, i.client_request_id, i.reported_at, i.received_at,
           i.media_urls, i.status, i.status_changed_at, d.public_id, i.version_id, i.routing_status::text,
           r.candidates, r.snap_distance_m, r.routed_at, r.staff,
           (select coalesce(json_agg(json_build_object('level', c.level, 'code', c.code, 'name', c.name)
                                     order by c.level), '[]')
              from grid_cell c where c.id in (i.district_id, i.street_id, i.community_id, i.grid_id))
      from unnest(p_ids) with ordinality as wanted (id, n)
      join incident i on i.id = wanted.id
      join event_subclass s on s.code = i.category
      left join incident d on d.id = i.duplicate_of
      left join incident_routing r on r.id = i.routing_id
     order by wanted.n;
end $$;
