//! Types spoken by both sides of Confab: ids, REST request and response bodies, the JSON
//! error shape and the WebSocket signaling protocol.
//!
//! Everything that crosses a process boundary is defined here once, so the server and the
//! clients cannot drift apart. With the `openapi` feature the types also derive
//! `utoipa::ToSchema` for the server's generated API document.

pub mod api;
pub mod communities;
pub mod error;
pub mod files;
pub mod ids;
pub mod search;
pub mod signal;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use ids::{
    CommunityId, CommunityInviteId, ContactRequestId, MessageId, ParticipantId, RoomId, SessionId,
    UploadId, UserId,
};
