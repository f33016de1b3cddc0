-- Who may see and do what (gis/access.py holds the table of roles; this file holds the people, their
-- sessions, the keys' roles and scopes, and the audit log).

-- A scope is a node of the grid tree named by its code (stable across versions), or the whole city (null).
-- The role's names are checked here as well as in code, so that a hand-written insert cannot invent one.
create table app_user (
    id            integer generated always as identity primary key,
    name          text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    display_name  text not null default '' check (char_length(display_name) <= 100),
    role          text not null check (role in ('admin', 'planner', 'dispatcher', 'handler', 'grid_worker', 'viewer')),
    scope_code    text check (scope_code ~ '^[0-9]{6}([0-9]{3}){0,3}$'),
    department    text check (department ~ '^[A-Z][A-Z0-9]{0,15}$'),
    password_hash text not null,
    created_at    timestamptz not null default now(),
    created_by    text not null,
    disabled_at   timestamptz,
    check ((role = 'handler') = (department is not null))
);

-- Server-side sessions: the browser's signed cookie carries only the token, so logging out, disabling a
-- user or a session's expiry ends it at once, whatever copy of the cookie is still around.
create table user_session (
    token_sha256 text primary key,
    user_id      integer not null references app_user (id) on delete cascade,
    created_at   timestamptz not null default now(),
    seen_at      timestamptz not null default now(),
    ended_at     timestamptz,
    address      text
);
create index user_session_user_idx on user_session (user_id);

alter table api_key
    add column role        text not null default 'device'
        check (role in ('device', 'open311', 'admin', 'planner', 'dispatcher', 'handler', 'grid_worker', 'viewer')),
    add column scope_code  text check (scope_code ~ '^[0-9]{6}([0-9]{3}){0,3}$'),
    add column department  text check (department ~ '^[A-Z][A-Z0-9]{0,15}$'),
    add column per_minute  integer check (per_minute > 0),  -- null: no limit
    add column last_used_at timestamptz,
    add constraint api_key_handler_check check ((role = 'handler') = (department is not null));

-- Logins, failed logins, key use and refusals, and every change made through the API or the CLI's
-- administrative commands. Never updated or deleted by the platform.
create table audit_log (
    id      bigint generated always as identity primary key,
    at      timestamptz not null default now(),
    actor   text not null,          -- user or key name ('' when unknown, e.g. a failed login's unknown user)
    via     text not null check (via in ('session', 'key', 'cli', 'anonymous')),
    action  text not null,          -- login, login_failed, logout, key_used, refused, POST /api/v1/…, user add, …
    status  integer,                -- the HTTP status of an API request
    address text,
    detail  jsonb not null default '{}'
);
create index audit_log_at_idx on audit_log (at);
create index audit_log_actor_idx on audit_log (actor, at);

-- The editor's scope check (gis/grid_edit.py) reads the cells its own transaction changed from the log.
alter table grid_edit add column xact xid8 not null default pg_current_xact_id();
create index grid_edit_xact_idx on grid_edit (xact);

-- A scope's cells in every version: incidents are routed to cell ids of the version active then.
create index grid_cell_code_idx on grid_cell (code);
