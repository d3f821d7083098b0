-- Confab's first schema. The same file runs on SQLite and PostgreSQL, so it keeps to the
-- types both share: ids are UUIDs stored as text, times are unix seconds in bigint, and a
-- nullable timestamp stands in for a boolean (revoked_at, used_at).

create table users (
    id text primary key,
    -- stored lowercased, so the unique index makes usernames unique without regard to case
    username text not null unique,
    -- stored lowercased for the same reason
    email text not null unique,
    -- argon2id PHC string
    password_hash text not null,
    display_name text,
    status_text text,
    created_at bigint not null,
    updated_at bigint not null
);

-- One row per login (device). A session is one refresh-token family: reuse of a rotated
-- token revokes the whole session.
create table sessions (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    last_used_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint,
    user_agent text,
    ip text
);
create index sessions_by_user on sessions (user_id);

-- Refresh tokens are opaque random strings; only their SHA-256 is stored.
create table refresh_tokens (
    token_hash text primary key,
    session_id text not null references sessions (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    -- set when the token is exchanged; a second exchange is reuse
    used_at bigint
);
create index refresh_tokens_by_session on refresh_tokens (session_id);

-- Access tokens refused before their expiry (logout). Rows are purged once expired.
create table denied_access_tokens (
    jti text primary key,
    expires_at bigint not null
);

create table rooms (
    id text primary key,
    title text not null,
    owner_id text not null references users (id) on delete cascade,
    max_participants bigint not null,
    -- kept in step with room_members so that "join unless full" is one conditional
    -- update of this row, atomic on both databases
    member_count bigint not null default 0,
    created_at bigint not null
);

create table room_members (
    room_id text not null references rooms (id) on delete cascade,
    user_id text not null references users (id) on delete cascade,
    joined_at bigint not null,
    primary key (room_id, user_id)
);
create index room_members_by_user on room_members (user_id);

-- Invite links; like refresh tokens, only the token's hash is stored.
create table room_invites (
    token_hash text primary key,
    room_id text not null references rooms (id) on delete cascade,
    created_by text not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    max_uses bigint,
    uses bigint not null default 0
);
create index room_invites_by_room on room_invites (room_id);
