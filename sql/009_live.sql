-- The live feed (gis/live.py, GET /api/v1/live): an outbox of what happened — new reports, case actions,
-- re-routings — written by triggers inside the writing transaction, so that an event exists exactly when
-- its change committed. One NOTIFY per statement tells the web workers to look; what they deliver is read
-- from the table, so a lost notification costs a delay, never an event.

create table live_event (
    id          bigint generated always as identity primary key,
    -- the writing transaction: readers deliver events in (xact, id) order, and only once every transaction
    -- up to xact has ended (gis/live.py says why)
    xact        xid8 not null default pg_current_xact_id(),
    at          timestamptz not null default now(),
    kind        text not null check (kind in ('report', 'case', 'routing')),
    incident_id bigint,  -- no foreign key: a log, read by id, that may outlive what it tells of
    data        jsonb not null
);
create index live_event_order_idx on live_event (xact, id);
create index live_event_at_idx on live_event (at);  -- the tick forgets events older than a week

-- Bulk loaders of history say `set local gridmap.live = off` (gis/demo_history.py): backdated news is no
-- news, and a hundred thousand events would flood every open feed.
create function live_enabled() returns boolean language sql stable as $$
    select current_setting('gridmap.live', true) is distinct from 'off'
$$;

-- The cells are ids (a map already holds the cells' codes and names by id, from /api/v1/grids or the tiles).
create function live_report() returns trigger language plpgsql as $$
begin
    insert into live_event (kind, incident_id, data)
    select 'report', n.id,
           jsonb_build_object('id', n.public_id, 'category', n.category, 'status', n.status,
                              'lon', ST_X(n.geom), 'lat', ST_Y(n.geom), 'reported_at', n.reported_at,
                              'routing_status', n.routing_status, 'version_id', n.version_id,
                              'district_id', n.district_id, 'street_id', n.street_id,
                              'community_id', n.community_id, 'grid_id', n.grid_id)
      from added n
     order by n.id;
    if found then
        perform pg_notify('gridmap_live', '');  -- the same notification twice in a transaction is sent once
    end if;
    return null;
end $$;
create trigger live_report after insert on incident referencing new table as added
    for each statement when (live_enabled()) execute function live_report();

-- The incident row has already taken the action's effects (gis/cases.py updates it first): holder and
-- due_at are those after the action.
create function live_case() returns trigger language plpgsql as $$
begin
    insert into live_event (kind, incident_id, data)
    select 'case', e.incident_id,
           jsonb_build_object('id', i.public_id, 'version', e.seq, 'action', e.action,
                              'from_state', e.from_state, 'to_state', e.to_state, 'at', e.at,
                              'category', i.category, 'reported_at', i.reported_at,
                              'lon', ST_X(i.geom), 'lat', ST_Y(i.geom), 'holder', i.holder, 'due_at', i.due_at,
                              'district_id', i.district_id, 'street_id', i.street_id,
                              'community_id', i.community_id, 'grid_id', i.grid_id)
      from added e
      join incident i on i.id = e.incident_id
     order by e.id;
    if found then
        perform pg_notify('gridmap_live', '');
    end if;
    return null;
end $$;
create trigger live_case after insert on case_event referencing new table as added
    for each statement when (live_enabled()) execute function live_case();

-- An intake routing arrives with its report (the 'report' event carries its cells); any later routing
-- (reroute, import) is news, told with the routing it replaces (one index probe per row).
create function live_routing() returns trigger language plpgsql as $$
begin
    insert into live_event (kind, incident_id, data)
    select 'routing', r.incident_id,
           jsonb_build_object('id', i.public_id, 'reason', r.reason, 'lon', ST_X(i.geom), 'lat', ST_Y(i.geom),
                              'routing_status', r.status, 'version_id', r.version_id,
                              'district_id', r.district_id, 'street_id', r.street_id,
                              'community_id', r.community_id, 'grid_id', r.grid_id,
                              'previous', case when p.id is not null then jsonb_build_object(
                                  'routing_status', p.status, 'version_id', p.version_id,
                                  'district_id', p.district_id, 'street_id', p.street_id,
                                  'community_id', p.community_id, 'grid_id', p.grid_id) end)
      from added r
      join incident i on i.id = r.incident_id
      left join lateral (select * from incident_routing p
                          where p.incident_id = r.incident_id and p.id < r.id
                          order by p.id desc limit 1) p on true
     where r.reason <> 'intake'
     order by r.id;
    if found then
        perform pg_notify('gridmap_live', '');
    end if;
    return null;
end $$;
create trigger live_routing after insert on incident_routing referencing new table as added
    for each statement when (live_enabled()) execute function live_routing();
