-- The messenger: room kinds and roles, message timelines with read markers, contacts,
-- contact requests and blocks. Upgrades a database of the first schema in place: every
-- existing room becomes a group, its owner's membership row becomes the owner's.
-- The same file runs on SQLite and PostgreSQL (see 0001 for the shared types); booleans
-- are nullable timestamps ("set when it became true").

-- `direct`, `group` or `channel` (a community's room, reserved for a later version).
alter table rooms add column kind text not null default 'group';
-- Direct rooms only: "<smaller user id>:<larger user id>". The unique index makes "one
-- direct room per pair" hold under concurrent creation on both databases (both allow
-- many NULLs in a unique index).
alter table rooms add column direct_key text;
create unique index rooms_direct_key on rooms (direct_key);
-- The seq of the newest message: the next message takes last_seq + 1 under this row's
-- lock, in the transaction that stores it, so seqs are dense per room.
alter table rooms add column last_seq bigint not null default 0;
-- The room's change counter: every message, edit, deletion and reaction change takes the
-- next rev the same way. A client that has applied every change up to rev N is up to
-- date after asking for the changes since N: that is the durable catch-up cursor.
alter table rooms add column last_rev bigint not null default 0;

-- `owner`, `admin` or `member`. rooms.owner_id stays the owner's id (kept in step).
alter table room_members add column role text not null default 'member';
update room_members set role = 'owner'
where exists (
    select 1 from rooms r where r.id = room_members.room_id and r.owner_id = room_members.user_id
);
-- Read marker: the seq of the last message this member has read. Unread counts are
-- counted from it, not kept as counters that drift.
alter table room_members add column last_read_seq bigint not null default 0;
-- The highest seq any of this member's devices said it received.
alter table room_members add column delivered_seq bigint not null default 0;
alter table room_members add column muted_at bigint;
create index room_members_by_room on room_members (room_id, joined_at);

-- Set when the user stopped sharing read receipts.
alter table users add column receipts_hidden_at bigint;

create table messages (
    id text primary key,
    room_id text not null references rooms (id) on delete cascade,
    seq bigint not null,
    -- the rev of the latest change to this row (creation, edit, deletion, reaction)
    rev bigint not null,
    -- `text` or `missed_call`
    kind text not null default 'text',
    -- null for a system message without a user behind it; a deleted account's messages
    -- stay in the timeline without an author
    author_id text references users (id) on delete set null,
    -- emptied when the message is deleted (a tombstone keeps its seq)
    body text not null,
    reply_to text,
    -- the author's idempotency key; unique per author (index below), so a retried send
    -- finds the original instead of storing a second message
    client_id text,
    created_at bigint not null,
    edited_at bigint,
    deleted_at bigint
);
create unique index messages_by_seq on messages (room_id, seq);
-- catch-up: "everything in this room changed after rev N"
create index messages_by_rev on messages (room_id, rev);
create unique index messages_idempotency on messages (author_id, client_id);

-- One row per (message, user, emoji).
create table message_reactions (
    message_id text not null references messages (id) on delete cascade,
    user_id text not null references users (id) on delete cascade,
    emoji text not null,
    created_at bigint not null,
    -- the room rev the reaction was added at: orders reactions exactly, where created_at
    -- (whole seconds) ties
    rev bigint not null,
    primary key (message_id, user_id, emoji)
);

-- Who a message mentions, with the room and seq copied so mention counts are one
-- indexed range per room.
create table message_mentions (
    message_id text not null references messages (id) on delete cascade,
    room_id text not null references rooms (id) on delete cascade,
    user_id text not null references users (id) on delete cascade,
    seq bigint not null,
    primary key (message_id, user_id)
);
create index message_mentions_by_user on message_mentions (user_id, room_id, seq);

-- One row per pair of contacts, smaller id first.
create table contacts (
    user_a text not null references users (id) on delete cascade,
    user_b text not null references users (id) on delete cascade,
    created_at bigint not null,
    primary key (user_a, user_b)
);
create index contacts_by_b on contacts (user_b);

-- Pending requests only: accepting, declining or cancelling deletes the row.
create table contact_requests (
    id text primary key,
    from_id text not null references users (id) on delete cascade,
    to_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    -- set when the recipient blocks the sender: the sender still sees it as pending,
    -- the recipient never does (a block is silent toward the blocked)
    silenced_at bigint
);
create unique index contact_requests_pair on contact_requests (from_id, to_id);
create index contact_requests_to on contact_requests (to_id);

create table blocks (
    blocker_id text not null references users (id) on delete cascade,
    blocked_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    primary key (blocker_id, blocked_id)
);
create index blocks_by_blocked on blocks (blocked_id);
