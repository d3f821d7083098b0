//! The one error type every command returns. It serializes to `{ kind, message, ... }`
//! so the UI can branch on `kind` and put `fields` messages on the right form fields.

use confab_core::api::ApiError;
use serde::Serialize;
use shared::ErrorCode;
use specta::Type;
use std::collections::BTreeMap;

/// What went wrong, in a shape the UI can act on.
#[derive(Debug, thiserror::Error, Serialize, Type)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum AppError {
    /// The input is not acceptable; `fields` says which field and why.
    #[error("{message}")]
    Invalid {
        message: String,
        fields: BTreeMap<String, String>,
    },
    /// It clashes with what exists (a taken username, a full room).
    #[error("{message}")]
    Conflict {
        message: String,
        fields: BTreeMap<String, String>,
    },
    /// There is no session (any more): sign in.
    #[error("{message}")]
    SignedOut { message: String },
    /// The password is right, but the account's email address is not confirmed yet: the
    /// sign-in form offers to send the confirmation again (`resend_email_verification`).
    #[error("{message}")]
    EmailUnverified { message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: Option<u32>,
    },
    /// The server could not be reached.
    #[error("{message}")]
    Unreachable { message: String },
    /// The server failed or answered something unexpected.
    #[error("{message}")]
    Server { message: String },
    /// A camera, microphone or speaker could not be used; `device` says which kind, so
    /// the UI can offer the test pattern or tone instead.
    #[error("{message}")]
    Device { message: String, device: DeviceKind },
    /// Something about the call (none running, one already running).
    #[error("{message}")]
    Call { message: String },
}

impl AppError {
    /// A validation error on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Invalid {
            fields: BTreeMap::from([(field.to_owned(), message.clone())]),
            message,
        }
    }

    pub fn signed_out() -> Self {
        Self::SignedOut {
            message: "You are not signed in.".into(),
        }
    }

    pub fn call(message: impl Into<String>) -> Self {
        Self::Call {
            message: message.into(),
        }
    }

    pub fn device(device: DeviceKind, message: impl std::fmt::Display) -> Self {
        Self::Device {
            message: message.to_string(),
            device,
        }
    }
}

/// Which kind of device an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum DeviceKind {
    Camera,
    Microphone,
    /// Listing devices, or a failure not tied to one device.
    Other,
}

impl From<confab_core::call::PreviewError> for AppError {
    fn from(e: confab_core::call::PreviewError) -> Self {
        use confab_core::call::PreviewError;
        let kind = match &e {
            PreviewError::Camera(_) => DeviceKind::Camera,
            PreviewError::Microphone(_) => DeviceKind::Microphone,
            PreviewError::Thread(_) => DeviceKind::Other,
        };
        Self::device(kind, e)
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        let fields = e.fields().cloned().unwrap_or_default();
        match &e {
            ApiError::Server { retry_after, .. } => match e.code() {
                Some(ErrorCode::ValidationFailed | ErrorCode::BadRequest) => {
                    Self::Invalid { message, fields }
                }
                Some(ErrorCode::Conflict | ErrorCode::RoomFull | ErrorCode::Gone) => {
                    Self::Conflict { message, fields }
                }
                Some(ErrorCode::InvalidCredentials) => Self::Invalid {
                    message,
                    fields: BTreeMap::from([(
                        "login".to_owned(),
                        "Wrong username, email or password.".to_owned(),
                    )]),
                },
                Some(ErrorCode::Unauthorized | ErrorCode::TokenReused) => {
                    Self::SignedOut { message }
                }
                Some(ErrorCode::EmailUnverified) => Self::EmailUnverified { message },
                Some(ErrorCode::NotFound | ErrorCode::Forbidden) => Self::NotFound { message },
                Some(ErrorCode::RateLimited) => Self::RateLimited {
                    message,
                    retry_after_secs: retry_after
                        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
                },
                _ => Self::Server { message },
            },
            ApiError::Transport(_) => Self::Unreachable { message },
            ApiError::NotSignedIn => Self::signed_out(),
            ApiError::InvalidServerUrl { reason, .. } => {
                Self::field("server", format!("Not a server address: {reason}."))
            }
            ApiError::Decode { .. } | ApiError::TokenStore(_) | ApiError::Interrupted => {
                Self::Server { message }
            }
        }
    }
}
