//! The one JSON error shape used by every REST endpoint and every WebSocket error message:
//! `{"error": {"code", "message", "fields"?}}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Machine-readable error codes. Clients branch on these, never on the message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// One or more fields are invalid; see `fields`.
    ValidationFailed,
    /// The request could not be understood (malformed JSON, bad path parameter, ...).
    BadRequest,
    /// No valid credentials were presented, or they expired or were revoked.
    Unauthorized,
    /// Login failed. Deliberately the same whether or not the account exists.
    InvalidCredentials,
    /// A refresh token was presented a second time; its whole session was revoked.
    TokenReused,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// Sign-in refused because the account's email address is not confirmed yet
    /// (`--require-email-verification`): open the mailed link, or ask for it again with
    /// `POST /api/auth/verify-email/resend`. Said only to whoever gave the right password.
    EmailUnverified,
    /// No such resource (or not visible to you).
    NotFound,
    /// The HTTP method is not supported on this path.
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate, already member, ...).
    Conflict,
    /// The room or its call has reached its participant limit.
    RoomFull,
    /// You may not message, add or call this user (not a contact, or not reachable for
    /// you). Deliberately the same answer whatever the reason, so a block cannot be told
    /// apart from a privacy setting.
    CannotMessageUser,
    /// The resource existed but is no longer usable (expired or used-up invite).
    Gone,
    /// The body or message is larger than allowed.
    PayloadTooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// Too many requests or messages; retry later.
    RateLimited,
    /// A dependency (the database) is not reachable.
    Unavailable,
    /// Something went wrong on the server; details are in its log, not here.
    Internal,
    /// WebSocket: the client speaks a protocol version the server does not.
    UnsupportedVersion,
    /// WebSocket: the message is not valid JSON or not a known message type.
    InvalidMessage,
    /// WebSocket: the message needs an authenticated connection, or auth was sent twice.
    AuthState,
    /// WebSocket: the sender is not in the call this message is about.
    NotInCall,
    /// WebSocket: the addressed participant is not in the sender's call.
    UnknownParticipant,
    /// A code this build does not know (sent by a newer server). Never sent by this one.
    #[serde(other)]
    Unknown,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show to the user.
    pub message: String,
    /// Per-field messages for `validation_failed` and field conflicts (field name -> message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

impl ErrorBody {
    /// An error without field details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                fields: None,
            },
        }
    }
}
