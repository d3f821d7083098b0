//! The HTTP error type. Every failure becomes the JSON error shape of `shared::ErrorBody`;
//! internal errors show a generic message and carry their detail to the logging
//! middleware in the response extensions.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::{ErrorBody, ErrorCode, ErrorDetail};
use std::collections::BTreeMap;

/// Field name -> message.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything a handler can fail with.
#[derive(thiserror::Error, Debug)]
pub enum ApiError {
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("this refresh token was already used; the session has been signed out")]
    TokenReused,
    #[error("{0}")]
    Forbidden(&'static str),
    /// The password is right but the address is not confirmed yet: a 403 with its own
    /// code, so a client can offer to send the confirmation again.
    #[error("{0}")]
    EmailUnverified(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        message: &'static str,
        fields: Option<FieldErrors>,
    },
    #[error("the room is full")]
    RoomFull,
    /// The same answer for "not a contact" and "blocked", on purpose.
    #[error("you cannot message this user")]
    CannotMessageUser,
    #[error("{0}")]
    Gone(&'static str),
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the database is not reachable")]
    Unavailable,
    #[error("this server speaks WebSocket protocol confab.v2; offer it as a subprotocol")]
    UnsupportedVersion,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl ApiError {
    /// A single-field validation error.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(name.to_owned(), message.into())]))
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
            ),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials),
            Self::TokenReused => (StatusCode::UNAUTHORIZED, ErrorCode::TokenReused),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::EmailUnverified(_) => (StatusCode::FORBIDDEN, ErrorCode::EmailUnverified),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::Conflict { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::RoomFull => (StatusCode::CONFLICT, ErrorCode::RoomFull),
            Self::CannotMessageUser => (StatusCode::FORBIDDEN, ErrorCode::CannotMessageUser),
            Self::Gone(_) => (StatusCode::GONE, ErrorCode::Gone),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Self::UnsupportedVersion => (StatusCode::BAD_REQUEST, ErrorCode::UnsupportedVersion),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl ApiError {
    /// The error as the WebSocket sends it. Internal detail is logged here, since no
    /// middleware sees WebSocket replies.
    pub fn detail(&self) -> ErrorDetail {
        if let Self::Internal(e) = self {
            tracing::error!(error = %format!("{e:#}"), "internal error on the WebSocket");
        }
        let fields = match self {
            Self::Validation(f) => Some(f.clone()),
            Self::Conflict { fields, .. } => fields.clone(),
            _ => None,
        };
        count(self.status_and_code().1);
        ErrorDetail {
            code: self.status_and_code().1,
            message: self.to_string(),
            fields,
        }
    }
}

/// Counts an error answer by its code (`confab_errors_total`; see `crate::metrics`).
fn count(code: ErrorCode) {
    let code = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    metrics::counter!("confab_errors_total", "code" => code).increment(1);
}

/// Detail of an internal error, for the logging middleware only.
#[derive(Clone, Debug)]
struct InternalDetail(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        count(code);
        let fields = match &self {
            Self::Validation(f) => Some(f.clone()),
            Self::Conflict { fields, .. } => fields.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                fields,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            Self::RateLimited { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::Internal(e) => {
                response
                    .extensions_mut()
                    .insert(InternalDetail(format!("{e:#}")));
            }
            _ => {}
        }
        response
    }
}

/// Middleware: logs internal errors with their detail, and turns any error response that
/// is not already JSON (or an HTML page's) (axum's extractor rejections, 404 and 405 from the router, the body
/// limit's 413) into the JSON error shape, so clients meet one shape everywhere.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalDetail(detail)) = response.extensions().get::<InternalDetail>() {
        tracing::error!(%method, %path, error = %detail, "internal error");
    }
    let status = response.status();
    // JSON is the API's shape already; HTML is a page's own answer (http::pages).
    let is_json_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_page {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection bodies are short plain text; keep them as the message.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut response = Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&ErrorBody::new(code, message)).unwrap_or_default()),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.remove(header::CONTENT_LENGTH);
    response
}
