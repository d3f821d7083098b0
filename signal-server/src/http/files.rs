//! Files over HTTP: `POST /api/uploads` (the raw bytes as the body, streamed to storage),
//! `GET /api/uploads/{id}` (the upload and fresh signed links), `GET /api/files/...`
//! (the bytes behind a signed link, with ranges), avatars (`PUT`/`DELETE
//! /api/users/me/avatar`) and `GET /api/pictures/{id}` (avatars and icons).
//!
//! Every file answer, and every error on these paths, carries `X-Content-Type-Options:
//! nosniff` and `Content-Security-Policy: sandbox`; only PNG, JPEG, GIF and WebP are
//! `Content-Disposition: inline`, everything else is an attachment (a download).

use crate::auth::AuthUser;
use crate::db::{self, files as store};
use crate::error::ApiError;
use crate::files::images::{self, ImageError};
use crate::files::sniff::{self, OCTET_STREAM, Raster};
use crate::files::{self, Files, ReceiveError, Received, Variant, svg};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::files::{Attachment, FileKind, FileLinks, PICTURE_MAX, Picture, Upload, picture_url};
use shared::{CommunityId, ErrorBody, ErrorCode, UploadId, UserId};
use std::ops::Range;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(get_upload))
        .routes(routes!(file))
        .routes(routes!(set_avatar, delete_avatar))
        .routes(routes!(set_icon, delete_icon))
        .routes(routes!(picture))
}

/// The raw bytes of a file, as the request body (any type: the server sniffs it).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawFile(Vec<u8>);

const NO_SUCH_UPLOAD: ApiError = ApiError::NotFound("no such upload");

/// The answers of the file endpoints: the API's errors, plus 413 and 416 with the same
/// JSON shape. All of them carry the file headers.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the file is over the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the range is not satisfiable")]
    Range { size: u64 },
}

impl From<sqlx::Error> for FileError {
    fn from(e: sqlx::Error) -> Self {
        Self::Api(e.into())
    }
}

impl From<anyhow::Error> for FileError {
    fn from(e: anyhow::Error) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for FileError {
    fn into_response(self) -> Response {
        let mut response = match self {
            Self::Api(e) => e.into_response(),
            Self::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(ErrorBody::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the file is over the limit of {limit} bytes"),
                )),
            )
                .into_response(),
            Self::Range { size } => {
                let mut r = (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    Json(ErrorBody::new(
                        ErrorCode::BadRequest,
                        "the range is not satisfiable (one range within the file)",
                    )),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r
            }
        };
        protect(response.headers_mut());
        response
    }
}

impl From<ReceiveError> for FileError {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::TooLarge(limit) => Self::TooLarge(limit),
            ReceiveError::Body(reason) => Self::Api(ApiError::BadRequest(reason)),
            ReceiveError::Io(e) => Self::Api(ApiError::Internal(e.into())),
        }
    }
}

/// `nosniff` and `sandbox`: the browser neither guesses a type nor runs anything.
fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

/// Refuses a body whose declared length is over `limit` before reading any of it.
fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), FileError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(FileError::TooLarge(limit)),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
struct UploadQuery {
    /// The file's name, for the download (1-1000 characters; folders are dropped, long
    /// names are cut to 200 characters keeping the end). It never decides the type.
    #[param(min_length = 1, max_length = 1000)]
    name: String,
}

/// Uploads a file to attach to a message: the raw bytes are the body (any
/// `Content-Type`; the server sniffs the type from the content). Images (PNG, JPEG, GIF,
/// WebP) are re-encoded without their metadata and get a preview, a thumbnail, their
/// dimensions and a placeholder; HTML, XHTML, SVG, XML and scripts are stored as
/// `application/octet-stream` downloads. Attach it by id within an hour, or it is removed.
#[utoipa::path(post, path = "/api/uploads", tag = "files", security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = Option<RawFile>, content_type = "application/octet-stream", description = "the file's bytes (none: a zero-byte file)"),
    responses(
        (status = 201, body = Upload, description = "stored"),
        (status = 400, body = ErrorBody, description = "the upload was interrupted, or the query does not parse"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "over `--max-upload-size` (`payload_too_large`)"),
        (status = 422, body = ErrorBody, description = "a bad file name"),
    ))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Upload>), FileError> {
    // The length is the name as sent (what the document's maxLength speaks of), then
    // trimmed it must still say something.
    let raw_name = q.name.trim();
    if raw_name.is_empty() || q.name.chars().count() > 1000 {
        return Err(ApiError::field("name", "must be 1-1000 characters long").into());
    }
    let name = sniff::clean_name(raw_name);
    let files = state.files.clone();
    check_length(&headers, files.max_upload)?;
    let received = files.receive(body, files.max_upload).await?;
    let id = UploadId::new();
    let row = store_attachment(&files, id, auth.user_id, name, received).await?;
    store::insert(&state.pool, &row).await?;
    Ok((
        StatusCode::CREATED,
        Json(upload_view(&files, &row, auth.user_id)?),
    ))
}

/// Stores a received attachment (and its image variants); returns its row.
async fn store_attachment(
    files: &Files,
    id: UploadId,
    uploader: UserId,
    name: String,
    received: Received,
) -> Result<store::UploadRow, FileError> {
    let (content_type, raster) = sniff::sniff(&received.head);
    let mut row = store::UploadRow {
        id: id.to_string(),
        uploader_id: uploader.to_string(),
        purpose: store::ATTACHMENT.to_owned(),
        name,
        content_type,
        kind: FileKind::File.as_str().to_owned(),
        size: i64::try_from(received.size).map_err(anyhow::Error::from)?,
        sha256: received.sha256.clone(),
        width: None,
        height: None,
        placeholder: None,
        preview_size: None,
        thumbnail_size: None,
        created_at: db::now(),
        message_id: None,
        room_id: None,
        attached_at: None,
    };
    let processed = match raster {
        Some(format) => Some(process_image(files, &received, format).await?),
        None => None,
    };
    match processed {
        Some(Ok(p)) => {
            row.kind = FileKind::Image.as_str().to_owned();
            row.width = Some(i64::from(p.width));
            row.height = Some(i64::from(p.height));
            row.placeholder = Some(p.placeholder);
            row.preview_size = Some(p.preview.len() as i64);
            row.thumbnail_size = Some(p.thumbnail.len() as i64);
            files
                .storage
                .put_bytes(&files::key(id, Variant::Preview), p.preview)
                .await?;
            files
                .storage
                .put_bytes(&files::key(id, Variant::Thumbnail), p.thumbnail)
                .await?;
            match p.original {
                Some(clean) => {
                    row.size = clean.len() as i64;
                    row.sha256 = hex_sha256(&clean);
                    files
                        .storage
                        .put_bytes(&files::key(id, Variant::Original), clean)
                        .await?;
                }
                None => put_received(files, id, received).await?,
            }
        }
        Some(Err(e)) => {
            // It said it was an image and is not one (broken, a polyglot, over the
            // pixel limit): a plain download, never shown inline.
            tracing::debug!(error = %e, "an upload kept as a download");
            row.content_type = OCTET_STREAM.to_owned();
            put_received(files, id, received).await?;
        }
        None => put_received(files, id, received).await?,
    }
    Ok(row)
}

async fn put_received(files: &Files, id: UploadId, received: Received) -> anyhow::Result<()> {
    let size = received.size;
    let path = received.temp.path().to_path_buf();
    files
        .storage
        .put_file(&files::key(id, Variant::Original), &path, size)
        .await?;
    // Moved away: nothing left to remove.
    let _ = received.temp.take();
    Ok(())
}

/// Decodes and re-encodes an image in a blocking task, at most two at once.
async fn process_image(
    files: &Files,
    received: &Received,
    format: Raster,
) -> anyhow::Result<Result<images::Processed, ImageError>> {
    let _permit = files.decoding.acquire().await?;
    let path = received.temp.path().to_path_buf();
    Ok(tokio::task::spawn_blocking(move || images::process(&path, format)).await?)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The upload as `viewer` sees it, with links signed for them.
fn upload_view(files: &Files, row: &store::UploadRow, viewer: UserId) -> Result<Upload, FileError> {
    let file: Attachment = row.attachment()?;
    let exp = files::link_expiry(db::now());
    let image = file.kind == FileKind::Image;
    let link = |v: Variant| files.link(file.id, v, viewer, exp);
    Ok(Upload {
        attached: row.attached_at.is_some(),
        created_at: row.created(),
        links: FileLinks {
            url: link(Variant::Original),
            preview_url: image.then(|| link(Variant::Preview)),
            thumbnail_url: image.then(|| link(Variant::Thumbnail)),
            expires_at: db::at(exp),
        },
        file,
    })
}

/// An upload and fresh signed links to it: for its uploader, and, once it is attached,
/// for every member of the message's room.
#[utoipa::path(get, path = "/api/uploads/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = UploadId, Path, description = "upload id")),
    responses(
        (status = 200, body = Upload),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such upload, or not yours to see"),
    ))]
async fn get_upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<UploadId>,
) -> Result<Json<Upload>, FileError> {
    let row = store::readable(&state.pool, id, auth.user_id)
        .await?
        .ok_or(NO_SUCH_UPLOAD)?;
    Ok(Json(upload_view(&state.files, &row, auth.user_id)?))
}

#[derive(Debug, Deserialize, IntoParams)]
struct LinkQuery {
    /// The user the link was made for.
    u: UserId,
    /// Unix seconds after which the link no longer works.
    exp: i64,
    /// The server's signature (hex).
    #[param(pattern = "^[0-9a-f]{64}$")]
    sig: String,
}

/// The bytes behind a signed link (from `GET /api/uploads/{id}`); no access token. The
/// link's user must still be a member of the room. One byte range (`Range: bytes=a-b`)
/// is answered with 206; several ranges, or one outside the file, with 416. Cacheable
/// (private) until the link expires; `If-None-Match` with the ETag answers 304.
#[utoipa::path(get, path = "/api/files/{id}/{variant}", tag = "files",
    params(
        ("id" = UploadId, Path, description = "upload id"),
        ("variant" = inline(Variant), Path, description = "which form of the file"),
        LinkQuery,
        ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`"),
        ("If-None-Match" = Option<String>, Header, description = "the ETag of a cached copy"),
    ),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = RawFile),
        (status = 206, description = "the requested range", content_type = "application/octet-stream", body = RawFile),
        (status = 304, description = "your cached copy is current"),
        (status = 403, body = ErrorBody, description = "the link's signature is wrong, or it expired"),
        (status = 404, body = ErrorBody, description = "no such file, or its user may no longer see it"),
        (status = 416, body = ErrorBody, description = "several ranges, or one outside the file"),
    ))]
async fn file(
    State(state): State<AppState>,
    Path((id, variant)): Path<(UploadId, Variant)>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Result<Response, FileError> {
    let files = &state.files;
    if !files.verify(id, variant, q.u, q.exp, &q.sig) {
        return Err(ApiError::Forbidden("this link is not valid").into());
    }
    let now = db::now();
    if q.exp < now {
        return Err(ApiError::Forbidden("this link has expired").into());
    }
    let row = store::readable(&state.pool, id, q.u)
        .await?
        .ok_or(NO_SUCH_UPLOAD)?;
    let (content_type, size) = match variant {
        Variant::Original => (row.content_type.clone(), row.size),
        Variant::Preview => (
            "image/webp".to_owned(),
            row.preview_size.ok_or(NO_SUCH_UPLOAD)?,
        ),
        Variant::Thumbnail => (
            "image/webp".to_owned(),
            row.thumbnail_size.ok_or(NO_SUCH_UPLOAD)?,
        ),
    };
    let served = Served {
        key: files::key(id, variant),
        content_type,
        size: u64::try_from(size).map_err(anyhow::Error::from)?,
        etag: format!("\"{}-{}\"", row.sha256, variant.as_str()),
        name: Some(row.name.clone()),
        cache: format!("private, max-age={}", q.exp - now),
    };
    serve(files, served, &headers).await
}

/// What `serve` sends.
struct Served {
    key: String,
    content_type: String,
    size: u64,
    etag: String,
    /// The download name (`Content-Disposition: ...; filename*=`).
    name: Option<String>,
    cache: String,
}

/// Answers with a stored object: 304 for a matching ETag, 206 for one range, 416 for
/// ranges it will not serve, else 200, all with the file headers.
async fn serve(files: &Files, s: Served, headers: &HeaderMap) -> Result<Response, FileError> {
    let mut out = HeaderMap::new();
    protect(&mut out);
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| anyhow::anyhow!(e));
    out.insert(header::ETAG, value(&s.etag)?);
    out.insert(header::CACHE_CONTROL, value(&s.cache)?);
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let inline = sniff::is_inline_safe(&s.content_type);
    let disposition = match (&s.name, inline) {
        (_, true) => "inline".to_owned(),
        (Some(name), false) => format!("attachment; filename*=UTF-8''{}", percent(name)),
        (None, false) => "attachment".to_owned(),
    };
    out.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == s.etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(header::CONTENT_TYPE, value(&s.content_type)?);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, s.size)?,
        None => None,
    };
    let (status, range_len) = match &range {
        Some(r) => {
            out.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {}-{}/{}", r.start, r.end - 1, s.size))?,
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, s.size),
    };
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(range_len));
    if range_len == 0 {
        return Ok((status, out, Body::empty()).into_response());
    }
    let stream = files.storage.get(&s.key, range).await?;
    Ok((status, out, Body::from_stream(stream)).into_response())
}

/// Parses `Range: bytes=...` for a file of `size` bytes. `None`: serve it all (a range
/// unit or syntax we do not know is ignored, as RFC 9110 allows); a range past the end,
/// or several ranges, are refused.
fn parse_range(header: &str, size: u64) -> Result<Option<Range<u64>>, FileError> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Err(FileError::Range { size });
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        // The last N bytes.
        let Ok(n) = end.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(FileError::Range { size });
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(first) = start.parse::<u64>() else {
            return Ok(None);
        };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(FileError::Range { size });
        }
        first..last + 1
    };
    Ok(Some(range))
}

/// RFC 5987 percent-encoding of a file name (everything but unreserved characters).
fn percent(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Receives a picture (avatar or icon) and makes the served PNG or WebP of it: PNG, JPEG
/// and WebP are decoded and scaled to 256 px; an SVG is checked and rendered to PNG.
pub async fn make_picture(
    files: &Files,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<u8>, &'static str), FileError> {
    check_length(headers, PICTURE_MAX)?;
    let received = files.receive(body, PICTURE_MAX).await?;
    let (_, raster) = sniff::sniff(&received.head);
    let path = received.temp.path().to_path_buf();
    let _permit = files
        .decoding
        .acquire()
        .await
        .map_err(anyhow::Error::from)?;
    match raster {
        Some(format @ (Raster::Png | Raster::Jpeg | Raster::Webp)) => {
            let made = tokio::task::spawn_blocking(move || images::picture(&path, format))
                .await
                .map_err(anyhow::Error::from)?;
            match made {
                Ok(webp) => Ok((webp, "image/webp")),
                Err(e) => Err(ApiError::field("file", format!("{e}")).into()),
            }
        }
        _ if svg::looks_like_svg(&received.head) => {
            let data = tokio::fs::read(&path).await.map_err(anyhow::Error::from)?;
            let made = tokio::task::spawn_blocking(move || svg::render(&data))
                .await
                .map_err(anyhow::Error::from)?;
            match made {
                Ok(png) => Ok((png, "image/png")),
                Err(e) => Err(ApiError::field("file", e.to_string()).into()),
            }
        }
        _ => Err(ApiError::field("file", "must be a PNG, JPEG, WebP or SVG image").into()),
    }
}

/// Stores a made picture as an upload of `purpose`; returns its id.
pub async fn store_picture(
    state: &AppState,
    owner: UserId,
    purpose: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> Result<UploadId, FileError> {
    let id = UploadId::new();
    let row = store::UploadRow {
        id: id.to_string(),
        uploader_id: owner.to_string(),
        purpose: purpose.to_owned(),
        name: if content_type == "image/png" {
            "picture.png".to_owned()
        } else {
            "picture.webp".to_owned()
        },
        content_type: content_type.to_owned(),
        kind: FileKind::Image.as_str().to_owned(),
        size: bytes.len() as i64,
        sha256: hex_sha256(&bytes),
        width: None,
        height: None,
        placeholder: None,
        preview_size: None,
        thumbnail_size: None,
        created_at: db::now(),
        message_id: None,
        room_id: None,
        attached_at: None,
    };
    state
        .files
        .storage
        .put_bytes(&files::key(id, Variant::Original), bytes)
        .await?;
    store::insert(&state.pool, &row).await?;
    Ok(id)
}

/// Removes a picture that was replaced or cleared.
pub async fn remove_picture(state: &AppState, id: UploadId) -> Result<(), FileError> {
    files::remove_objects(&state.files, id).await?;
    store::delete(&state.pool, id).await?;
    Ok(())
}

/// Sets your avatar: the raw bytes of a PNG, JPEG, WebP or SVG image (at most 5 MiB) are
/// the body. Raster images are scaled to at most 256 px and re-encoded as WebP; an SVG
/// must pass the checks (at most 70x70, no scripts, event handlers, external references
/// or foreignObject) and is served as a PNG rendered from it, never as SVG.
#[utoipa::path(put, path = "/api/users/me/avatar", tag = "users", security(("bearer" = [])),
    request_body(content = RawFile, content_type = "application/octet-stream", description = "the image's bytes"),
    responses(
        (status = 200, body = Picture, description = "the new avatar"),
        (status = 400, body = ErrorBody, description = "the upload was interrupted"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "over 5 MiB (`payload_too_large`)"),
        (status = 422, body = ErrorBody, description = "not an image that can be used (`fields.file` says why)"),
    ))]
async fn set_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Picture>, FileError> {
    let (bytes, content_type) = make_picture(&state.files, &headers, body).await?;
    let id = store_picture(&state, auth.user_id, store::AVATAR, bytes, content_type).await?;
    if let Some(old) = store::set_avatar(&state.pool, auth.user_id, Some(id)).await? {
        remove_picture(&state, old).await?;
    }
    Ok(Json(Picture {
        url: picture_url(id),
    }))
}

/// Removes your avatar.
#[utoipa::path(delete, path = "/api/users/me/avatar", tag = "users", security(("bearer" = [])),
    responses(
        (status = 204, description = "removed (or there was none)"),
        (status = 401, body = ErrorBody),
    ))]
async fn delete_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<StatusCode, FileError> {
    if let Some(old) = store::set_avatar(&state.pool, auth.user_id, None).await? {
        remove_picture(&state, old).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who may change a community's icon: its admins and owner.
async fn icon_admin(
    state: &AppState,
    community: CommunityId,
    user: UserId,
) -> Result<(), FileError> {
    match db::communities::role(&state.pool, community, user).await? {
        None => Err(ApiError::NotFound("no such community").into()),
        Some(role) if role.is_admin() => Ok(()),
        Some(_) => Err(ApiError::Forbidden("only the community's admins change its icon").into()),
    }
}

/// Sets, clears, and tells the members about a community's icon.
async fn replace_icon(
    state: &AppState,
    community: CommunityId,
    icon: Option<UploadId>,
) -> Result<(), FileError> {
    let old = store::set_icon(&state.pool, community, icon)
        .await?
        .ok_or(ApiError::NotFound("no such community"))?;
    if let Some(old) = old {
        remove_picture(state, old).await?;
    }
    if let Err(e) = crate::http::communities::announce_updated(state, community).await {
        tracing::warn!(error = %format!("{e:#}"), "icon change: events not sent");
    }
    Ok(())
}

/// Sets a community's icon (admins): the raw bytes of a PNG, JPEG, WebP or SVG image,
/// as for avatars (an SVG at most 70x70, checked, served as a PNG rendered from it).
/// Members get `community_updated` with the new `icon_url`.
#[utoipa::path(put, path = "/api/communities/{id}/icon", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    request_body(content = RawFile, content_type = "application/octet-stream", description = "the image's bytes"),
    responses(
        (status = 200, body = Picture, description = "the new icon"),
        (status = 400, body = ErrorBody, description = "the upload was interrupted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are a member but not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or you are not a member"),
        (status = 413, body = ErrorBody, description = "over 5 MiB (`payload_too_large`)"),
        (status = 422, body = ErrorBody, description = "not an image that can be used (`fields.file` says why)"),
    ))]
async fn set_icon(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Picture>, FileError> {
    icon_admin(&state, id, auth.user_id).await?;
    let (bytes, content_type) = make_picture(&state.files, &headers, body).await?;
    let icon = store_picture(&state, auth.user_id, store::ICON, bytes, content_type).await?;
    if let Err(e) = replace_icon(&state, id, Some(icon)).await {
        // The community went meanwhile: the new picture has no owner.
        remove_picture(&state, icon).await?;
        return Err(e);
    }
    Ok(Json(Picture {
        url: picture_url(icon),
    }))
}

/// Removes a community's icon (admins).
#[utoipa::path(delete, path = "/api/communities/{id}/icon", tag = "communities", security(("bearer" = [])),
    params(("id" = CommunityId, Path, description = "community id")),
    responses(
        (status = 204, description = "removed (or there was none)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "you are a member but not an admin"),
        (status = 404, body = ErrorBody, description = "no such community, or you are not a member"),
    ))]
async fn delete_icon(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<CommunityId>,
) -> Result<StatusCode, FileError> {
    icon_admin(&state, id, auth.user_id).await?;
    replace_icon(&state, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An avatar or community icon (the `avatar_url` / `icon_url` of the API's types): a
/// 256 px WebP, or a PNG rendered from an SVG. No access token: its URL names a random
/// id that changes with every new picture, so it is cached for good.
#[utoipa::path(get, path = "/api/pictures/{id}", tag = "files",
    params(
        ("id" = UploadId, Path, description = "picture id"),
        ("If-None-Match" = Option<String>, Header, description = "the ETag of a cached copy"),
    ),
    responses(
        (status = 200, description = "the picture", content(
            (RawFile = "image/webp"),
            (RawFile = "image/png"),
        )),
        (status = 304, description = "your cached copy is current"),
        (status = 404, body = ErrorBody, description = "no such picture (replaced or removed)"),
    ))]
async fn picture(
    State(state): State<AppState>,
    Path(id): Path<UploadId>,
    headers: HeaderMap,
) -> Result<Response, FileError> {
    let row = store::picture(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound("no such picture"))?;
    let served = Served {
        key: files::key(id, Variant::Original),
        content_type: row.content_type.clone(),
        size: u64::try_from(row.size).map_err(anyhow::Error::from)?,
        etag: format!("\"{}\"", row.sha256),
        name: None,
        cache: "public, max-age=31536000, immutable".to_owned(),
    };
    serve(&state.files, served, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str, size| parse_range(h, size).map_err(|_| ());
        assert_eq!(r("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(r("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(r("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(r("bytes=95-200", 100), Ok(Some(95..100)));
        assert_eq!(r("bytes=100-", 100), Err(()));
        assert_eq!(r("bytes=0-1,5-6", 100), Err(()));
        assert_eq!(r("bytes=0-0", 0), Err(()));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(r("bytes=5-1", 100), Ok(None));
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(percent("a b\".pdf"), "a%20b%22.pdf");
        assert_eq!(percent("é.txt"), "%C3%A9.txt");
    }
}
