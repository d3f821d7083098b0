//! Files: uploads, message attachments, their signed links, avatars and community icons.
//!
//! A file is uploaded first (`POST /api/uploads`, the raw bytes as the body), then
//! attached by id to one message (`attachments` on a send). Its bytes are fetched from
//! short-lived signed links (`FileLinks`) that carry no access token, so a webview can
//! show an image; the server checks the signature, its expiry and that the link's user
//! is still a member of the message's room.

use crate::ids::UploadId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most files one message carries.
pub const ATTACHMENTS_MAX: usize = 10;
/// Longest file name kept (characters); longer names are cut, keeping the extension.
pub const FILE_NAME_MAX: usize = 200;
/// Default largest upload (`--max-upload-size`), bytes: 25 MiB.
pub const UPLOAD_MAX_DEFAULT: u64 = 25 * 1024 * 1024;
/// Largest avatar or community icon upload, bytes.
pub const PICTURE_MAX: u64 = 5 * 1024 * 1024;
/// Largest declared size of an SVG avatar or icon, in user units (px).
pub const SVG_MAX_SIZE: f32 = 70.0;

/// What a file is, as far as the server could tell from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A PNG, JPEG, GIF or WebP that decoded: it has dimensions, a preview, a thumbnail
    /// and a placeholder, and is shown inline.
    Image,
    /// Anything else: offered as a download.
    File,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// A file attached to a message, as every member of the room sees it. Its bytes come
/// from `GET /api/uploads/{id}`'s signed links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub id: UploadId,
    /// The uploader's file name (cleaned), for the download.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Sniffed from the content, never the uploader's word.
    pub content_type: String,
    pub kind: FileKind,
    /// Images only: pixels, after EXIF orientation.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub width: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub height: Option<u32>,
    /// Images only: a BlurHash (<https://blurha.sh>) to paint while the preview loads.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub placeholder: Option<String>,
}

/// Signed links to a file's bytes, for the user who asked, until `expires_at`. They carry
/// no access token; each answer is cacheable (private) until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileLinks {
    /// The file itself (path and query, relative to the server's address). Images are
    /// re-encoded without their metadata; everything but PNG, JPEG, GIF and WebP comes
    /// as an attachment (a download).
    pub url: String,
    /// Images only: a WebP at most 1280 px on its longer side.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub preview_url: Option<String>,
    /// Images only: a WebP at most 320 px on its longer side.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub thumbnail_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/uploads` and `GET /api/uploads/{id}`: an upload and fresh links to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Upload {
    #[serde(flatten)]
    pub file: Attachment,
    /// Whether a message carries it (then it cannot be attached again). An upload no
    /// message carries is removed an hour after it was made.
    pub attached: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub links: FileLinks,
}

/// `PUT /api/users/me/avatar` and `PUT /api/communities/{id}/icon`: where the new
/// picture is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Picture {
    /// Path of the picture (a 256 px WebP, or a PNG rendered from an SVG), relative to
    /// the server's address; it never changes, a new picture gets a new URL.
    pub url: String,
}

/// The path an avatar or icon is served at.
pub fn picture_url(id: UploadId) -> String {
    format!("/api/pictures/{id}")
}
