//! Newtype ids: a `UserId` cannot be passed where a `RoomId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[serde(transparent)]
        pub struct $name(#[cfg_attr(feature = "specta", specta(type = String))] pub Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A room: a named group of members that can hold a call.
    RoomId
);
uuid_id!(
    /// A login session (one refresh-token family, one device).
    SessionId
);
uuid_id!(
    /// One WebSocket connection; it is what a call participant is. A user signed in on two
    /// devices is two participants.
    ParticipantId
);
uuid_id!(
    /// A chat message (or a system message such as a missed call) in a room's timeline.
    MessageId
);
uuid_id!(
    /// A pending contact (friend) request.
    ContactRequestId
);
uuid_id!(
    /// A community: members with roles, bans, invite links and channels (rooms of kind
    /// `channel`).
    CommunityId
);
uuid_id!(
    /// A community invite link (the link's token is shown once; this id lists and
    /// revokes it).
    CommunityInviteId
);
uuid_id!(
    /// An uploaded file: a message attachment, an avatar or a community icon.
    UploadId
);
