//! The messenger's rules, shared by the REST endpoints (`http/messages.rs`) and the
//! WebSocket (`ws/session.rs`): validate, store through `db::messages`, then tell the
//! room. The database is the one source of truth; the live events are an optimisation
//! over it (a client that misses one finds the gap in `rev` and asks for the changes).

use crate::db::messages::{self as store, Changed, NewMessage, Refusal, Sent};
use crate::db::{self, contacts};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use crate::ws::hub::{CallContext, MissedCall};
use governor::clock::{Clock, DefaultClock};
use shared::api::{
    CLIENT_ID_MAX, MESSAGE_BODY_MAX, Message, MessageKind, RECEIPTS_MAX_MEMBERS, RoomKind, RoomRole,
};
use shared::signal::ServerMsg;
use shared::{MessageId, ParticipantId, RoomId, UserId};
use std::collections::HashSet;
use tokio::sync::mpsc;

const NO_SUCH_ROOM: ApiError = ApiError::NotFound("no such room");
const NO_SUCH_MESSAGE: ApiError = ApiError::NotFound("no such message");

/// Checks a body: 1-4000 characters, not blank, no control characters but line breaks
/// and tabs.
pub fn validate_body(body: &str, errors: &mut FieldErrors) {
    if body.trim().is_empty() {
        errors.insert("body".into(), "must not be blank".into());
    } else if body.chars().count() > MESSAGE_BODY_MAX {
        errors.insert(
            "body".into(),
            format!("must be at most {MESSAGE_BODY_MAX} characters long"),
        );
    } else if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.insert("body".into(), "must not contain control characters".into());
    }
}

/// Checks a message's content: the body as `validate_body` says, except that a message
/// with attachments may have an empty one; at most 10 attachments, each once.
pub fn validate_content(body: &str, attachments: &[shared::UploadId], errors: &mut FieldErrors) {
    if attachments.is_empty() || !body.is_empty() {
        validate_body(body, errors);
    }
    if attachments.len() > shared::files::ATTACHMENTS_MAX {
        errors.insert(
            "attachments".into(),
            format!("at most {} per message", shared::files::ATTACHMENTS_MAX),
        );
    } else if attachments
        .iter()
        .enumerate()
        .any(|(i, a)| attachments[..i].contains(a))
    {
        errors.insert("attachments".into(), "must not repeat an upload".into());
    }
}

/// Checks an idempotency key: 1-64 visible characters.
pub fn validate_client_id(key: &str, field: &str, errors: &mut FieldErrors) {
    if key.is_empty() {
        errors.insert(field.into(), "is required".into());
    } else if key.chars().count() > CLIENT_ID_MAX {
        errors.insert(
            field.into(),
            format!("must be at most {CLIENT_ID_MAX} characters long"),
        );
    } else if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        errors.insert(
            field.into(),
            "must not contain spaces or control characters".into(),
        );
    }
}

/// The usernames a body mentions: `@name` at the start or after a character that cannot
/// be part of a username, lowercased, each once.
pub fn mentioned_usernames(body: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in body.char_indices() {
        if c == '@' && !prev.is_some_and(is_name) {
            let rest = &body[i + 1..];
            let end = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
            // A trailing dot ends a sentence, not a username.
            let name = rest[..end].trim_end_matches('.').to_ascii_lowercase();
            let len = name.chars().count();
            if (shared::api::USERNAME_MIN..=shared::api::USERNAME_MAX).contains(&len)
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
        prev = Some(c);
    }
    out
}

/// Counts one send against the author's rate limit.
fn rate_limit(state: &AppState, user: UserId) -> Result<(), ApiError> {
    state.message_limiter.check_key(&user).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited {
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound => NO_SUCH_ROOM,
        Refusal::ReadOnly => ApiError::CannotMessageUser,
        Refusal::AdminsOnly => {
            ApiError::Forbidden("only admins write in this announcement channel")
        }
    }
}

/// Sends a message. Returns it and whether it was stored now (false: a retry of a key
/// already used for this same message, which gets the original).
#[expect(
    clippy::too_many_arguments,
    reason = "the message's parts as both transports give them, one each"
)]
pub async fn send(
    state: &AppState,
    author: UserId,
    room: RoomId,
    client_id: &str,
    body: &str,
    reply_to: Option<MessageId>,
    attachments: &[shared::UploadId],
    except: Option<ParticipantId>,
) -> Result<(Message, bool), ApiError> {
    // The key's name where the client gave it: a header over REST, a field on the socket.
    let key_field = if except.is_some() {
        "client_id"
    } else {
        "idempotency_key"
    };
    let mut errors = FieldErrors::new();
    validate_client_id(client_id, key_field, &mut errors);
    validate_content(body, attachments, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if let Err(limited) = rate_limit(state, author) {
        // A retry of a message already stored is not a new send: it gets the original.
        if let Some(original) = store::by_client_id(&state.pool, author, client_id).await?
            && original.room_id == room.to_string()
            && (original.body == body
                || original.edited_at.is_some()
                || original.deleted_at.is_some())
        {
            return Ok((one(state, original).await?, false));
        }
        return Err(limited);
    }
    if let Some(parent) = reply_to {
        let found = store::by_id(&state.pool, room, parent).await?;
        if found.is_none_or(|m| m.deleted_at.is_some()) {
            return Err(ApiError::field("reply_to", "no such message in this room"));
        }
    }
    let new = NewMessage {
        room,
        author,
        kind: MessageKind::Text,
        body: body.to_owned(),
        reply_to,
        client_id: Some(client_id.to_owned()),
        mentions: mentioned_usernames(body),
        attachments: attachments.to_vec(),
    };
    // The SQLite writer's batches do not attach files: such sends take their own
    // transaction (which waits for the write lock like any other).
    let sent = match &state.message_writer {
        Some(writer) if attachments.is_empty() => writer.send(new).await?,
        _ => store::send(&state.pool, &new).await?,
    };
    match sent {
        Sent::Created(row, mentions) => {
            metrics::counter!("confab_messages_total").increment(1);
            let mut message = row.message(Vec::new(), mentions)?;
            if !attachments.is_empty() {
                message.attachments = db::files::for_messages(&state.pool, &[row.id.as_str()])
                    .await?
                    .remove(&row.id)
                    .unwrap_or_default();
            }
            state.hub.stop_typing(room, author);
            publish(state, &message, except, |m| ServerMsg::MessageCreated {
                message: m,
            })
            .await;
            Ok((message, true))
        }
        Sent::Replayed(row) => Ok((one(state, row).await?, false)),
        Sent::KeyReused => Err(ApiError::Validation(FieldErrors::from([(
            key_field.to_owned(),
            "was already used for a different message".to_owned(),
        )]))),
        Sent::Refused(r) => Err(refused(r)),
        Sent::BadAttachments => Err(ApiError::field(
            "attachments",
            "each must be an upload of yours not attached to a message yet",
        )),
    }
}

/// Tells every member of the message's room about it. Members who block the author get a
/// copy flagged `author_blocked` (serialized separately); everyone else shares one. The
/// change is committed by then: a failure here is logged, not answered (the client would
/// retry a send that worked), and clients catch up from the database anyway.
async fn publish(
    state: &AppState,
    message: &Message,
    except: Option<ParticipantId>,
    event: impl Fn(Message) -> ServerMsg,
) {
    if let Err(e) = fan_out(state, message, except, event).await {
        tracing::warn!(error = %e, room = %message.room_id, "message events not sent");
    }
}

async fn fan_out(
    state: &AppState,
    message: &Message,
    except: Option<ParticipantId>,
    event: impl Fn(Message) -> ServerMsg,
) -> Result<(), ApiError> {
    let (members, blocking) = store::audience(&state.pool, message.room_id, message.author).await?;
    let (flagged, plain): (Vec<UserId>, Vec<UserId>) =
        members.into_iter().partition(|u| blocking.contains(u));
    state
        .hub
        .send_to_users(&plain, &event(message.clone()), except);
    if !flagged.is_empty() {
        let mut copy = message.clone();
        copy.author_blocked = true;
        state.hub.send_to_users(&flagged, &event(copy), except);
    }
    Ok(())
}

/// Whether `user` is an admin (or the owner) of a group room.
async fn moderates(state: &AppState, room: RoomId, user: UserId) -> Result<bool, ApiError> {
    let pos = store::position(&state.pool, room, user)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    let group = RoomKind::parse(&pos.kind) != Some(RoomKind::Direct);
    Ok(group && RoomRole::parse(&pos.role).is_some_and(RoomRole::is_admin))
}

fn changed(c: Changed) -> Result<store::MessageRow, ApiError> {
    match c {
        Changed::Done(row) | Changed::Unchanged(row) => Ok(row),
        Changed::NoSuchMessage => Err(NO_SUCH_MESSAGE),
        Changed::NotYours => Err(ApiError::Forbidden("this is not your message")),
        Changed::TooManyReactions => Err(ApiError::Conflict {
            message: "a message holds at most 20 different reactions",
            fields: None,
        }),
        Changed::Refused(r) => Err(refused(r)),
    }
}

async fn one(state: &AppState, row: store::MessageRow) -> Result<Message, ApiError> {
    Ok(store::decorate(&state.pool, &[row], &HashSet::new())
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("decorate lost a message"))?)
}

/// Edits one's own message.
pub async fn edit(
    state: &AppState,
    user: UserId,
    room: RoomId,
    id: MessageId,
    body: &str,
) -> Result<Message, ApiError> {
    let mut errors = FieldErrors::new();
    validate_body(body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mentions = mentioned_usernames(body);
    let result = store::edit(&state.pool, room, user, id, body, &mentions).await?;
    let done = matches!(result, Changed::Done(_));
    let message = one(state, changed(result)?).await?;
    if done {
        publish(state, &message, None, |m| ServerMsg::MessageUpdated {
            message: m,
        })
        .await;
    }
    Ok(message)
}

/// Deletes a message (its author, or a group's admin).
pub async fn delete(
    state: &AppState,
    user: UserId,
    room: RoomId,
    id: MessageId,
) -> Result<Message, ApiError> {
    let moderator = moderates(state, room, user).await?;
    let result = store::delete(&state.pool, room, user, id, moderator).await?;
    let message = one(state, changed(result)?).await?;
    publish(state, &message, None, |m| ServerMsg::MessageDeleted {
        message: m,
    })
    .await;
    Ok(message)
}

/// Checks that `emoji` is exactly one emoji.
pub fn validate_emoji(emoji: &str) -> Result<(), ApiError> {
    if emoji.len() <= 64 && emojis::get(emoji).is_some() {
        Ok(())
    } else {
        Err(ApiError::field("emoji", "must be exactly one emoji"))
    }
}

/// Adds or removes one's reaction.
pub async fn react(
    state: &AppState,
    user: UserId,
    room: RoomId,
    id: MessageId,
    emoji: &str,
    add: bool,
) -> Result<Message, ApiError> {
    validate_emoji(emoji)?;
    let result = store::react(&state.pool, room, user, id, emoji, add).await?;
    let done = matches!(result, Changed::Done(_));
    let message = one(state, changed(result)?).await?;
    if done {
        let (members, _) = store::audience(&state.pool, room, None).await?;
        let event = ServerMsg::ReactionChanged {
            room_id: room,
            message_id: message.id,
            rev: message.rev,
            reactions: message.reactions.clone(),
        };
        state.hub.send_to_users(&members, &event, None);
    }
    Ok(message)
}

/// Moves my read marker (`read`) or my delivery marker to `seq`, and tells who should
/// know: my other devices always learn my read marker; the other members learn it in
/// direct rooms and groups of up to 25 when I share receipts. Returns the marker now.
pub async fn mark(
    state: &AppState,
    user: UserId,
    room: RoomId,
    seq: u64,
    read: bool,
) -> Result<u64, ApiError> {
    let seq = i64::try_from(seq).map_err(|_| ApiError::field("seq", "is too large"))?;
    let pos = store::position(&state.pool, room, user)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    let Some(now) = store::advance_marker(&state.pool, room, user, seq, read).await? else {
        return Ok(u64::try_from(pos.last_read_seq).unwrap_or(0));
    };
    let seq = u64::try_from(now).unwrap_or(0);
    let small = u32::try_from(pos.member_count).unwrap_or(u32::MAX) <= RECEIPTS_MAX_MEMBERS;
    let sharing = if read {
        db::users::by_id(&state.pool, user)
            .await?
            .is_some_and(|u| u.receipts_hidden_at.is_none())
    } else {
        true
    };
    let mut to = vec![user];
    if small && sharing {
        let (members, _) = store::audience(&state.pool, room, None).await?;
        let hidden = contacts::block_relations(&state.pool, user).await?;
        to.extend(
            members
                .into_iter()
                .filter(|m| *m != user && !hidden.contains(m)),
        );
    } else if !read {
        return Ok(seq);
    }
    let event = if read {
        ServerMsg::Read {
            room_id: room,
            user_id: user,
            seq,
        }
    } else {
        ServerMsg::Delivered {
            room_id: room,
            user_id: user,
            seq,
        }
    };
    state.hub.send_to_users(&to, &event, None);
    Ok(seq)
}

/// `typing` from a connection: tells the room's other members who may see it (nobody in
/// a block relation with the typist).
pub async fn typing(
    state: &AppState,
    conn: ParticipantId,
    user: UserId,
    room: RoomId,
) -> Result<(), ApiError> {
    let pos = store::position(&state.pool, room, user)
        .await?
        .ok_or(NO_SUCH_ROOM)?;
    let (members, _) = store::audience(&state.pool, room, None).await?;
    if RoomKind::parse(&pos.kind) == Some(RoomKind::Direct) {
        // Typing is writing: not in a direct room whose pair is no longer contacts.
        let other = members.iter().copied().find(|m| *m != user);
        match other {
            Some(other) if contacts::are_contacts(&state.pool, user, other).await? => {}
            _ => return Err(ApiError::CannotMessageUser),
        }
    }
    let hidden = contacts::block_relations(&state.pool, user).await?;
    let audience = members
        .into_iter()
        .filter(|m| *m != user && !hidden.contains(m))
        .collect();
    state.hub.typing(conn, room, user, audience);
    Ok(())
}

/// What a join needs besides the room: its members (told that a call runs) and, in a
/// direct room, whom to ring. A direct room whose pair is no longer contacts cannot be
/// called (the same refusal as writing to it).
pub async fn call_context(
    state: &AppState,
    room: RoomId,
    user: UserId,
    kind: RoomKind,
    video: bool,
) -> Result<CallContext, ApiError> {
    let (members, _) = store::audience(&state.pool, room, None).await?;
    let ring = if kind == RoomKind::Direct {
        let other = members
            .iter()
            .copied()
            .find(|m| *m != user)
            .ok_or(ApiError::CannotMessageUser)?;
        if !contacts::are_contacts(&state.pool, user, other).await? {
            return Err(ApiError::CannotMessageUser);
        }
        Some(other)
    } else {
        None
    };
    Ok(CallContext {
        members,
        ring,
        video,
    })
}

/// Writes a "missed call" message for each call the hub reports, until shutdown.
pub async fn record_missed_calls(state: AppState, mut rx: mpsc::UnboundedReceiver<MissedCall>) {
    loop {
        let missed = tokio::select! {
            () = state.shutdown.cancelled() => return,
            missed = rx.recv() => match missed {
                Some(m) => m,
                None => return,
            },
        };
        if let Err(e) = record_missed_call(&state, &missed).await {
            tracing::warn!(error = ?e, room = %missed.room, "recording a missed call");
        }
    }
}

async fn record_missed_call(state: &AppState, missed: &MissedCall) -> Result<(), ApiError> {
    let body = if missed.video {
        "Missed video call"
    } else {
        "Missed call"
    };
    let Some(row) = store::send_system(
        &state.pool,
        missed.room,
        missed.caller,
        MessageKind::MissedCall,
        body,
    )
    .await?
    else {
        return Ok(());
    };
    let message = row.message(Vec::new(), Vec::new())?;
    publish(state, &message, None, |m| ServerMsg::MessageCreated {
        message: m,
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_where_a_username_can_start() {
        assert_eq!(
            mentioned_usernames("@ann hi @Bob.Smith, and mail@example.com @x @ann"),
            vec!["ann".to_owned(), "bob.smith".to_owned()]
        );
        assert_eq!(
            mentioned_usernames("(@carol) thanks @dave."),
            vec!["carol", "dave"]
        );
        assert!(mentioned_usernames("no mentions here").is_empty());
    }

    #[test]
    fn bodies_and_keys_are_checked() {
        let mut e = FieldErrors::new();
        validate_body("  \n ", &mut e);
        assert!(e.contains_key("body"));
        let mut e = FieldErrors::new();
        validate_body(&"x".repeat(MESSAGE_BODY_MAX), &mut e);
        validate_client_id(&"k".repeat(CLIENT_ID_MAX), "client_id", &mut e);
        assert!(e.is_empty(), "{e:?}");
        validate_body(&"x".repeat(MESSAGE_BODY_MAX + 1), &mut e);
        validate_client_id("has space", "client_id", &mut e);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn one_emoji_only() {
        assert!(validate_emoji("👍").is_ok());
        assert!(validate_emoji("👍🏽").is_ok());
        assert!(validate_emoji("👍👍").is_err());
        assert!(validate_emoji("a").is_err());
        assert!(validate_emoji("").is_err());
    }
}
