-- The intake path in one call per report: intake_report() replaces submit_report().
--
-- A web worker keeps the active version's point-location index (gis/worker_router.py) and routes the
-- report itself in a fraction of a millisecond, where route_report() takes about 2 ms of the database's
-- time; it passes its answer with the version it routed against. The answer is kept only if that version
-- is still the active one; otherwise, or when the worker has no answer yet, the report is routed here.
-- Both give the same answers (tests/test_batch_routing.py checks it on random points, ties included).

drop function submit_report(text, text, text, double precision, double precision, text, double precision,
                            double precision, real, text, jsonb, text, text, timestamptz, text[],
                            double precision, double precision, interval);
-- ... and with it the helpers only it used: a report's duplicate is now found before it is stored.
drop function route_incident(bigint, text, double precision, integer);
drop function possible_duplicate_of(bigint, double precision, interval);

-- Open incidents by place: the duplicate check's way in. By subclass and time alone it would read every
-- open report of a busy subclass of the day (4,500 rows, 24 ms, measured) to keep the few within 50 m.
create index incident_open_geom_idx on incident using gist (geom) where status not in ('closed', 'voided');

-- The open incident a new report at (lon, lat) may repeat: same subclass, within p_radius_m metres (by
-- local_distance_m(), the metric of routing) and p_window of p_reported_at; the nearest one (then the
-- oldest), or the one that one repeats while that is still open. Reports in transactions that have not
-- committed yet are not seen.
create function open_duplicate(p_category text, p_lon double precision, p_lat double precision,
                               p_reported_at timestamptz, p_radius_m double precision, p_window interval)
returns bigint language plpgsql stable as $$
begin
    return (
        -- materialized: the place is always the first filter, whatever the statistics say of the others
        with near as materialized (
            select o.id, o.category, o.reported_at, o.duplicate_of, local_distance_m(o.geom, p_lon, p_lat) as d
              from incident o
             where o.geom && expand_metres(p_lon, p_lat, p_radius_m) and o.status not in ('closed', 'voided'))
        select coalesce((select f.id from incident f
                          where f.id = o.duplicate_of and f.status not in ('closed', 'voided')), o.id)
          from near o
         where o.category = p_category and o.d <= p_radius_m
           and o.reported_at between p_reported_at - p_window and p_reported_at + p_window
         order by o.d, o.id
         limit 1);
end $$;

-- A plan kept for good: with a custom plan per call it was planned anew every time (0.97 ms a call against
-- 0.25 ms with the generic plan, measured on the demo).
alter function responsible_staff(bigint[]) set plan_cache_mode = force_generic_plan;

-- Incidents as the APIs show them, one JSON document each, in the order of p_ids: the one place that says
-- what an incident looks like from outside. (Reading 31 typed columns into Python and rearranging them
-- there cost 0.6 ms of the web worker's CPU per incident; this, one document.)
drop function incident_rows(bigint[]);
create function incident_docs(p_ids bigint[]) returns table (id bigint, doc json)
language plpgsql stable set plan_cache_mode = force_generic_plan as $$
#variable_conflict use_column
declare
    one bigint;
begin
    -- one incident at a time, by primary key: a plan that stays right however the tables grow (a join
    -- with the array, planned while the tables were small, kept scanning them whole as they grew)
    foreach one in array p_ids loop
        return query
        select i.id, json_build_object(
            'id', i.public_id,
            'category', json_build_object('code', i.category, 'name_zh', s.name_zh, 'name_en', s.name_en,
                                          'class_code', s.class_code, 'department', s.department_code),
            'description', i.description,
            'address', i.address,
            'location', json_build_object('lon', ST_X(i.geom), 'lat', ST_Y(i.geom), 'crs', 'EPSG:4326'),
            'given_location', json_build_object('x', i.given_x, 'y', i.given_y, 'crs', i.given_crs),
            'accuracy_m', i.accuracy_m,
            'source', i.source,
            'reporter', i.reporter,
            'client_request_id', i.client_request_id,
            'reported_at', i.reported_at,
            'received_at', i.received_at,
            'media', i.media_urls,
            'status', i.status,
            'status_changed_at', i.status_changed_at,
            'duplicate_of', (select d.public_id from incident d where d.id = i.duplicate_of),
            'routing', json_build_object(
                'status', i.routing_status,
                'version', i.version_id,
                'cells', (select coalesce(json_agg(json_build_object(
                                      'level', c.level,
                                      'level_name', (array['district', 'street', 'community', 'grid'])[c.level + 1],
                                      'code', c.code, 'name', c.name) order by c.level), '[]')
                            from grid_cell c
                           where c.id in (i.district_id, i.street_id, i.community_id, i.grid_id)),
                'candidates', coalesce(r.candidates, '{}'),
                'snap_distance_m', r.snap_distance_m,
                'routed_at', r.routed_at,
                'staff', coalesce(r.staff, '[]')))
          from incident i
          join event_subclass s on s.code = i.category
          left join incident_routing r on r.id = i.routing_id
         where i.id = one;
    end loop;
end $$;

-- incident's copy of its latest routing refers to cells and a version through incident_routing, whose
-- foreign keys stand; checking the copy again cost five more key look-ups (and row locks on the hot
-- district rows) per report.
alter table incident drop constraint incident_version_id_fkey, drop constraint incident_district_id_fkey,
    drop constraint incident_street_id_fkey, drop constraint incident_community_id_fkey,
    drop constraint incident_grid_id_fkey;

-- The copy onto incident skips incidents that already carry the routing (intake stores both at once).
create or replace function incident_routing_current() returns trigger language plpgsql as $$
begin
    update incident i
       set routing_id = a.id, version_id = a.version_id, routing_status = a.status,
           district_id = a.district_id, street_id = a.street_id,
           community_id = a.community_id, grid_id = a.grid_id
      from (select distinct on (incident_id) * from added order by incident_id, id desc) a
     where i.id = a.incident_id and i.routing_id is distinct from a.id;
    return null;
end $$;

-- One report in: stored (or, for a client_request_id seen before, found), routed and linked to the open
-- incident it may repeat. p_version .. p_snap_distance_m: the caller's routing (p_status null: none).
-- Returns the incident's id, whether it is new, the content hash stored with it (a retry must repeat it),
-- the active version and the incident's document; no row when p_category is not a subclass in service.
create function intake_report(
    p_category text, p_description text, p_address text, p_x double precision, p_y double precision,
    p_crs text, p_lon double precision, p_lat double precision, p_accuracy_m real, p_source text,
    p_reporter jsonb, p_client_request_id text, p_sha256 text, p_reported_at timestamptz, p_media text[],
    p_snap_m double precision, p_duplicate_m double precision, p_duplicate_window interval,
    p_version integer, p_status routing_status, p_cell_ids bigint[], p_candidates text[],
    p_snap_distance_m double precision)
returns table (incident_id bigint, created boolean, request_sha256 text, active_version integer, doc json)
language plpgsql as $$
#variable_conflict use_column
declare
    active integer := (select v.id from grid_version v where v.status = 'active');
    reported timestamptz := coalesce(p_reported_at, now());
    r record;
    new_id bigint;
    -- the routing row's id, taken first so that the incident is stored with its routing in one write
    routing bigint := nextval(pg_get_serial_sequence('incident_routing', 'id'));
begin
    if not exists (select from event_subclass s where s.code = p_category and s.in_service) then
        return;
    end if;
    if p_status is not null and p_version = active then
        select p_version as version_id, p_status as status, p_cell_ids as cell_ids, p_candidates as candidates,
               p_snap_distance_m as snap_distance_m into r;
    else
        select * into r from route_report(p_lon, p_lat, p_accuracy_m, p_snap_m, active);
    end if;
    insert into incident (category, description, address, given_x, given_y, given_crs, geom, accuracy_m,
                          source, reporter, client_request_id, request_sha256, reported_at, media_urls,
                          duplicate_of, routing_id, version_id, routing_status, district_id, street_id,
                          community_id, grid_id)
    values (p_category, p_description, p_address, p_x, p_y, p_crs, ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326),
            p_accuracy_m, p_source, p_reporter, p_client_request_id, p_sha256, reported, p_media,
            case when p_duplicate_m > 0 and p_duplicate_window > interval '0'
                 then open_duplicate(p_category, p_lon, p_lat, reported, p_duplicate_m, p_duplicate_window) end,
            routing, r.version_id, r.status, r.cell_ids[1], r.cell_ids[2], r.cell_ids[3], r.cell_ids[4])
    on conflict (client_request_id) do nothing
    returning id into new_id;
    if new_id is null then
        return query select i.id, false, i.request_sha256, active, d.doc
                       from incident i, incident_docs(array[i.id]) d
                      where i.client_request_id = p_client_request_id;
        return;
    end if;
    insert into incident_routing (id, incident_id, reason, version_id, status, district_id, street_id,
                                  community_id, grid_id, candidates, snap_distance_m, staff)
    overriding system value
    values (routing, new_id, 'intake', r.version_id, r.status, r.cell_ids[1], r.cell_ids[2], r.cell_ids[3],
            r.cell_ids[4], r.candidates, r.snap_distance_m, responsible_staff(r.cell_ids));
    return query select new_id, true, p_sha256, active, d.doc from incident_docs(array[new_id]) d;
end $$;
