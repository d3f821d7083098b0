-- Files: uploads (message attachments, avatars, community icons) and who has an avatar.
-- The same file runs on SQLite and PostgreSQL (see 0001 for the shared types).

create table uploads (
    id text primary key,
    uploader_id text not null references users (id) on delete cascade,
    -- `attachment` (attached to one message, once), `avatar` or `icon`: what it may be
    -- used for; avatars and icons are never attachable
    purpose text not null,
    -- the client's file name, cleaned (no folders, no control characters); only ever
    -- sent back as the download name, never used for a path or for the type
    name text not null,
    -- sniffed from the bytes (`infer`), never the client's word; HTML, XHTML, SVG, XML
    -- and scripts are stored as `application/octet-stream`
    content_type text not null,
    -- `image` (decoded: it has dimensions, a preview, a thumbnail and a placeholder) or
    -- `file`
    kind text not null,
    size bigint not null,
    -- hex SHA-256 of the stored bytes: the ETag
    sha256 text not null,
    width bigint,
    height bigint,
    -- a BlurHash of the image, shown while the preview loads
    placeholder text,
    -- sizes of the WebP variants, where there are any
    preview_size bigint,
    thumbnail_size bigint,
    created_at bigint not null,
    -- set once, in the transaction that stores the message; the room is copied so that
    -- serving checks membership with one join. `set null` when the message or room goes:
    -- the sweep then removes the upload and its stored objects (attached_at stays set,
    -- so it can never be attached again)
    message_id text references messages (id) on delete set null,
    room_id text references rooms (id) on delete set null,
    attached_at bigint,
    -- order within the message
    position bigint
);
create index uploads_by_message on uploads (message_id);
-- the sweep: unattached uploads by age
create index uploads_by_created on uploads (created_at);

-- The user's avatar: an upload of purpose `avatar` (a 256 px WebP, or a PNG rendered from
-- an SVG). Replacing or removing it deletes the old one.
alter table users add column avatar_file_id text;
