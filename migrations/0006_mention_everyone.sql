-- `@everyone` as one mark on the message instead of one message_mentions row per member:
-- in a community of 10,000 members the rows (and the ids listed in every copy of the
-- message) made one send cost 10,000 inserts and a 370 KB event. Mention counts count
-- these messages for every member whose read marker is before them (members who join
-- later start their markers at the newest message, so earlier ones never count). The
-- same file runs on SQLite and PostgreSQL (see 0001 for the shared types; booleans are
-- nullable timestamps).

-- when the message was marked as mentioning everyone in its channel (its send, or the
-- latest edit that kept `@everyone`); null: it does not (plain text, a member's
-- `@everyone`, or not a channel). Rows written per member before this migration stay
-- valid mentions.
alter table messages add column mentions_everyone_at bigint;

-- mention counts: "messages mentioning everyone in this room after my read marker", one
-- short index range; partial, because nearly no message has the mark
create index messages_mentioning_everyone on messages (room_id, seq)
    where mentions_everyone_at is not null;
