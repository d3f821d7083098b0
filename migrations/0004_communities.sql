-- Communities: named sets of members with roles, bans, invite links and channels. A
-- channel is a row of `rooms` of kind `channel` that belongs to a community; the
-- community's members get a `room_members` row for every channel (on join and on channel
-- creation; removed on leave, kick and ban), so timelines, read markers, unread counts,
-- typing and calls work for channels exactly as for groups. The same file runs on SQLite
-- and PostgreSQL (see 0001 for the shared types; booleans are nullable timestamps).

create table communities (
    id text primary key,
    name text not null,
    description text not null default '',
    -- lowercase name and description (lowercased by the server, so both databases
    -- compare the same way): the `?q=` filter is a `like` over it
    search_text text not null default '',
    -- the icon upload (files are another module's; null: no icon)
    icon_file_id text,
    -- `public` (anyone can find and join) or `private` (invite links only)
    visibility text not null default 'public',
    -- the one member whose role is `owner` (kept in step with community_members)
    owner_id text not null references users (id) on delete cascade,
    -- kept in step with community_members, so "join unless full" is one conditional
    -- update of this row, as for rooms
    member_count bigint not null default 0,
    created_at bigint not null
);
-- discover and the member's list page by (created_at, id)
create index communities_by_created on communities (visibility, created_at, id);

create table community_members (
    community_id text not null references communities (id) on delete cascade,
    user_id text not null references users (id) on delete cascade,
    -- `owner`, `admin` or `member`; copied onto the member's channel rows in room_members
    -- so the rooms code (message moderation, `@everyone`) sees the same role
    role text not null default 'member',
    joined_at bigint not null,
    primary key (community_id, user_id)
);
create index community_members_by_user on community_members (user_id, community_id);
create index community_members_by_joined on community_members (community_id, joined_at, user_id);

-- A banned user is no member, cannot join (by id or by link) until the ban is lifted.
create table community_bans (
    community_id text not null references communities (id) on delete cascade,
    user_id text not null references users (id) on delete cascade,
    -- a deleted admin's bans stay
    banned_by text references users (id) on delete set null,
    reason text,
    created_at bigint not null,
    primary key (community_id, user_id)
);

-- Invite links as for rooms (only the token's hash is stored), with an id so admins can
-- list and revoke them without the token.
create table community_invites (
    id text primary key,
    token_hash text not null unique,
    community_id text not null references communities (id) on delete cascade,
    created_by text not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    max_uses bigint,
    uses bigint not null default 0
);
create index community_invites_by_community on community_invites (community_id, created_at);

-- Channels: null for direct rooms and groups.
alter table rooms add column community_id text references communities (id) on delete cascade;
alter table rooms add column topic text;
alter table rooms add column category text;
-- order within the community's channel list (0 first), categories included
alter table rooms add column position bigint not null default 0;
-- set when only admins (and the owner) may write new messages (an announcement channel)
alter table rooms add column announcement_at bigint;
create index rooms_by_community on rooms (community_id, position);
