-- API keys for field devices and Open311 clients: only a hash of each key is kept.
create table api_key (
    id         integer generated always as identity primary key,
    name       text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    key_sha256 text not null unique,
    created_at timestamptz not null default now(),
    created_by text not null,
    revoked_at timestamptz
);

-- Open311 clients that were given a token instead of an id can trade it in later (tokens/<token>).
alter table incident add column token uuid not null unique default gen_random_uuid();
