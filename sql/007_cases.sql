-- The case workflow (gis/case_workflow.py): each incident's place in it, the immutable log of its events,
-- and the working calendar its deadlines count on.

-- Office hours of a working day, China time, and the days that break the weekly rule: public holidays and
-- make-up working days (调休). Settable; `gridmap db migrate` loads data/calendar_cn.csv into calendar_day.
create table office_hours (
    start_time time primary key,
    end_time   time not null check (end_time > start_time)
);
insert into office_hours values ('09:00', '12:00'), ('13:30', '18:00');

create table calendar_day (
    day  date primary key,
    kind text not null check (kind in ('holiday', 'workday')),
    name text not null default ''
);

-- A case's state lives on its incident (status is the workflow state), so that lists, maps and statistics
-- read one row. Null until the case gets there.
alter table incident
    -- the level that owns the case; null until its first action: the deepest level of its routing
    add column case_level text check (case_level in ('grid', 'community', 'street', 'district', 'city')),
    -- bumped by every action: an action names the version it saw, a stale one is refused (409)
    add column case_version integer not null default 0,
    -- who must act next, 'kind:code' ('street:410102001', 'department:CGJ', 'city'); null until the first
    -- action (then: the routing's deepest cell) and once the case is final
    add column holder text,
    add column unit_kind text check (unit_kind in ('grid', 'community', 'street', 'department')),
    add column unit_code text,
    add column opened_at timestamptz,
    add column first_dispatched_at timestamptz,
    add column dispatched_at timestamptz,  -- the current deadline's clock started here
    add column due_at timestamptz,         -- the deadline, extensions included
    add column handled_at timestamptz,     -- the latest handling (cleared by rework)
    add column closed_at timestamptz,
    add column handling_h real,            -- dispatch to handling, in hours of the subclass's time basis
    add column reworks smallint not null default 0,
    add column extensions smallint not null default 0,
    add column escalations smallint not null default 0;

create index incident_holder_idx on incident (holder) where status not in ('closed', 'voided');
create index incident_overdue_idx on incident (due_at) where status in ('dispatched', 'in_progress');
create index incident_closed_idx on incident (closed_at);
create index incident_due_idx on incident (due_at);

-- Every action on a case, never changed afterwards.
create table case_event (
    id          bigint generated always as identity primary key,
    incident_id bigint not null references incident (id),
    seq         integer not null,  -- the case_version this event produced: 1, 2, 3 ...
    action      text not null,
    from_state  text not null,
    to_state    text not null,
    from_level  text not null,
    to_level    text not null,
    actor       text not null check (char_length(actor) between 1 and 100),
    actor_unit  text,              -- 'kind:code' of the unit that acted; null for the system (tick)
    at          timestamptz not null,
    recorded_at timestamptz not null default now(),
    note        text not null default '' check (char_length(note) <= 2000),
    details     jsonb not null default '{}',  -- the action's own fields: unit, deadline, approver ...
    geom        geometry(Point, 4326),        -- where the actor was, when the device said
    accuracy_m  real check (accuracy_m >= 0),
    unique (incident_id, seq)
);

create function case_event_is_history() returns trigger language plpgsql as $$
begin
    raise exception 'case_event is history: act on the case again instead of changing event %', old.id
        using errcode = 'restrict_violation';
end $$;
create trigger case_event_immutable before update or delete on case_event
    for each row execute function case_event_is_history();

-- The unit that holds a case nobody has acted on yet: the deepest cell it was routed to, 'city' if none.
create function routing_holder(p_grid bigint, p_community bigint, p_street bigint, p_district bigint)
returns text language sql stable as $$
    select coalesce((select 'grid:' || code from grid_cell where id = p_grid),
                    (select 'community:' || code from grid_cell where id = p_community),
                    (select 'street:' || code from grid_cell where id = p_street),
                    (select 'district:' || code from grid_cell where id = p_district),
                    'city')
$$;

-- Incidents as the APIs show them (006_intake.sql), now with their case.
create or replace function incident_docs(p_ids bigint[]) returns table (id bigint, doc json)
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
                'staff', coalesce(r.staff, '[]')),
            'case', json_build_object(
                'version', i.case_version,
                'level', coalesce(i.case_level,
                                  split_part(routing_holder(i.grid_id, i.community_id, i.street_id, i.district_id),
                                             ':', 1)),
                'holder', case when i.status in ('closed', 'voided') then null
                               else coalesce(i.holder, routing_holder(i.grid_id, i.community_id, i.street_id,
                                                                      i.district_id)) end,
                'unit', case when i.unit_kind is null then null
                             else json_build_object('kind', i.unit_kind, 'code', i.unit_code) end,
                'time_limit_hours', s.time_limit_hours,
                'time_basis', s.time_basis,
                'opened_at', i.opened_at,
                'dispatched_at', i.dispatched_at,
                'due_at', i.due_at,
                'overdue', i.status in ('dispatched', 'in_progress') and i.due_at < now(),
                'handled_at', i.handled_at,
                'closed_at', i.closed_at,
                'handling_hours', i.handling_h,
                'reworks', i.reworks,
                'extensions', i.extensions,
                'escalations', i.escalations))
          from incident i
          join event_subclass s on s.code = i.category
          left join incident_routing r on r.id = i.routing_id
         where i.id = one;
    end loop;
end $$;
