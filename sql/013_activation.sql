-- Activation (gis/activation.py): a draft becomes the active version in one transaction that also re-routes
-- the open incidents against it (routing reason 'activation') and records who did it, why, and what the
-- partition check found.

alter table incident_routing
    drop constraint incident_routing_reason_check,
    add constraint incident_routing_reason_check check (reason in ('intake', 'reroute', 'import', 'activation'));

create table grid_activation (
    id                 bigint generated always as identity primary key,
    version_id         integer not null references grid_version (id),
    retired_version_id integer references grid_version (id),
    actor              text not null check (char_length(actor) between 1 and 100),
    at                 timestamptz not null default now(),
    forced             boolean not null,              -- activated although the check found problems
    reason             text check (char_length(reason) <= 2000),
    problems           jsonb not null default '{}',   -- {problem type: count} found by the check
    rerouted           integer not null,              -- open incidents given a routing against the version
    moved              integer not null,              -- ... of them now in other cells or routing status
    check (not forced or btrim(coalesce(reason, '')) <> '')
);

-- A routing's people as the live feed tells them: names, phones and posts, unit grid first.
create function staff_brief(p_staff jsonb) returns jsonb language sql immutable as $$
    select coalesce(jsonb_agg(jsonb_build_object('name', e -> 'name', 'phone', e -> 'phone', 'post', e -> 'post')
                              order by n), '[]')
      from jsonb_array_elements(p_staff) with ordinality as t (e, n)
$$;

-- The codes of a routing's cells: a new version gives the same cells new ids, so sameness is by code.
create function routing_codes(p_district bigint, p_street bigint, p_community bigint, p_grid bigint)
returns text[] language sql stable as $$
    select array[(select code from grid_cell where id = p_district), (select code from grid_cell where id = p_street),
                 (select code from grid_cell where id = p_community), (select code from grid_cell where id = p_grid)]
$$;

-- 009_live.sql's routing events, now with the people answerable before and after. An activation routes every
-- open incident again; only those whose cells, routing status or people change are news (the others would
-- flood every open feed with thousands of events that change nothing).
create or replace function live_routing() returns trigger language plpgsql as $$
begin
    insert into live_event (kind, incident_id, data)
    select 'routing', r.incident_id,
           jsonb_build_object('id', i.public_id, 'reason', r.reason, 'lon', ST_X(i.geom), 'lat', ST_Y(i.geom),
                              'routing_status', r.status, 'version_id', r.version_id,
                              'district_id', r.district_id, 'street_id', r.street_id,
                              'community_id', r.community_id, 'grid_id', r.grid_id, 'staff', staff_brief(r.staff),
                              'previous', case when p.id is not null then jsonb_build_object(
                                  'routing_status', p.status, 'version_id', p.version_id,
                                  'district_id', p.district_id, 'street_id', p.street_id,
                                  'community_id', p.community_id, 'grid_id', p.grid_id,
                                  'staff', staff_brief(p.staff)) end)
      from added r
      join incident i on i.id = r.incident_id
      left join lateral (select * from incident_routing p
                          where p.incident_id = r.incident_id and p.id < r.id
                          order by p.id desc limit 1) p on true
     where r.reason <> 'intake'
       and (r.reason <> 'activation' or p.id is null or p.status <> r.status or p.staff <> r.staff
            or routing_codes(p.district_id, p.street_id, p.community_id, p.grid_id)
               is distinct from routing_codes(r.district_id, r.street_id, r.community_id, r.grid_id))
     order by r.id;
    if found then
        perform pg_notify('gridmap_live', '');
    end if;
    return null;
end $$;
