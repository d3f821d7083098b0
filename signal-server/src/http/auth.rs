//! `/api/auth/*`: registration, login, refresh-token rotation, logout, sessions and
//! password reset by email.

use super::json::JsonBody;
use crate::auth::tokens::{hash_token, random_token};
use crate::auth::{AuthUser, password, validate};
use crate::client_ip::ClientIp;
use crate::db::{self, sessions::Rotation, users::UserRow};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use shared::api::{
    AuthResponse, ChangePasswordRequest, LoginRequest, Me, RefreshRequest, RegisterRequest,
    SessionInfo,
};
use shared::{ErrorBody, SessionId, UserId, signal::close};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(delete_session))
        .routes(routes!(change_password))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(resend_verification))
}

/// Creates an account. With `--require-email-verification` a confirmation link is mailed,
/// and the account can sign in once it is opened.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, body = Me),
    (status = 409, body = ErrorBody, description = "username or email taken (see fields)"),
    (status = 422, body = ErrorBody, description = "invalid fields"),
    (status = 429, body = ErrorBody, description = "too many attempts; see Retry-After"),
))]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Me>), ApiError> {
    let mut errors = FieldErrors::new();
    let username = validate::username(&req.username, &mut errors);
    let email = validate::email(&req.email, &mut errors);
    state
        .auth_limiter
        .check(client, if email.is_empty() { &username } else { &email })?;
    validate::new_password(
        &req.password,
        &req.confirm_password,
        "password",
        &[&username, &email],
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    conflict_if_taken(&state, &username, &email).await?;
    let hash = password::hash(req.password).await?;
    let verify = state.config.require_email_verification;
    let user = match db::users::insert(&state.pool, &username, &email, &hash, verify).await {
        Ok(user) => user,
        // Taken between the check and the insert.
        Err(e) if db::is_unique_violation(&e) => {
            conflict_if_taken(&state, &username, &email).await?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "registered");
    if verify {
        let (state, user) = (state.clone(), user.clone());
        state.tasks.clone().spawn(async move {
            if let Err(e) = mail_verification(&state, &user).await {
                tracing::error!(user = %user.id, error = %format!("{e:#}"), "confirmation mail failed");
            }
        });
    }
    Ok((StatusCode::CREATED, Json(user.me()?)))
}

async fn mail_verification(state: &AppState, user: &UserRow) -> anyhow::Result<()> {
    let link =
        crate::auth::reset::issue_verification(&state.pool, &state.config, user.user_id()?).await?;
    let hours = u64::try_from(crate::auth::reset::VERIFICATION_TTL_SECS / 3600).unwrap_or(24);
    state
        .mailer
        .send_verification(&user.email, &user.username, &link, hours)
        .await?;
    tracing::info!(user = %user.id, "confirmation mail sent");
    Ok(())
}

async fn conflict_if_taken(state: &AppState, username: &str, email: &str) -> Result<(), ApiError> {
    let (username_taken, email_taken) = db::users::taken(&state.pool, username, email).await?;
    let mut fields = FieldErrors::new();
    if username_taken {
        fields.insert("username".into(), "is already taken".into());
    }
    if email_taken {
        fields.insert("email".into(), "is already registered".into());
    }
    if fields.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict {
        message: "an account with these details already exists",
        fields: Some(fields),
    })
}

/// Signs in with email or username; starts a session.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = AuthResponse),
    (status = 401, body = ErrorBody, description = "wrong login or password (the same answer whether or not the account exists)"),
    (status = 403, body = ErrorBody, description = "the password is right, but an operator disabled the account (`forbidden`), or its email address is not confirmed yet (`email_unverified`, with --require-email-verification: POST /api/auth/verify-email/resend mails the link again)"),
    (status = 422, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "too many attempts; see Retry-After"),
))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let login = req.login.trim().to_lowercase();
    let mut errors = FieldErrors::new();
    if login.is_empty() {
        errors.insert("login".into(), "is required".into());
    }
    if req.password.is_empty() {
        errors.insert("password".into(), "is required".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    state.auth_limiter.check(client, &login)?;
    // No username or address holds a control character (and PostgreSQL text cannot hold
    // a NUL): no such account, without asking the database.
    let user = if login.chars().any(char::is_control) {
        None
    } else {
        db::users::by_login(&state.pool, &login).await?
    };
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::InvalidCredentials);
    };
    // Said only to whoever knows the password.
    if user.disabled_at.is_some() {
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    if state.config.require_email_verification && user.email_unverified_at.is_some() {
        return Err(ApiError::EmailUnverified(
            "confirm your email address first: open the link mailed to you (no mail? ask for \
             it again, or reset the password by email, which confirms it too)",
        ));
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let ip = client.to_string();
    let response = start_session(&state, &user, user_agent, Some(&ip)).await?;
    tracing::info!(user = %user.id, session = %response.session_id, "logged in");
    Ok(Json(response))
}

async fn start_session(
    state: &AppState,
    user: &UserRow,
    user_agent: Option<&str>,
    ip: Option<&str>,
) -> Result<AuthResponse, ApiError> {
    let refresh_token = random_token();
    let ttl = refresh_ttl(state);
    let user_agent = user_agent.map(|ua| ua.chars().take(256).collect::<String>());
    let session = db::sessions::create(
        &state.pool,
        user.user_id()?,
        &hash_token(&refresh_token),
        ttl,
        user_agent.as_deref(),
        ip,
    )
    .await?;
    token_pair(state, user, session, refresh_token)
}

fn refresh_ttl(state: &AppState) -> i64 {
    i64::try_from(state.config.refresh_token_ttl).unwrap_or(i64::MAX / 4)
}

fn token_pair(
    state: &AppState,
    user: &UserRow,
    session: SessionId,
    refresh_token: String,
) -> Result<AuthResponse, ApiError> {
    let (access_token, _exp) = state.jwt.issue(user.user_id()?, session)?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.config.access_token_ttl,
        refresh_expires_in: state.config.refresh_token_ttl,
        session_id: session,
        user: user.me()?,
    })
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a
/// used one signs out its whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = AuthResponse),
    (status = 401, body = ErrorBody, description = "invalid or expired (`unauthorized`), or reused (`token_reused`: the session is now revoked)"),
))]
async fn refresh(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    if req.refresh_token.trim().is_empty() {
        return Err(ApiError::field("refresh_token", "is required"));
    }
    let new_token = random_token();
    let rotation = db::sessions::rotate(
        &state.pool,
        &hash_token(req.refresh_token.trim()),
        &hash_token(&new_token),
        refresh_ttl(&state),
    )
    .await?;
    match rotation {
        Rotation::Rotated { session, user } => {
            let user = db::users::by_id(&state.pool, user)
                .await?
                .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
            if user.disabled_at.is_some() {
                return Err(ApiError::Unauthorized("the account is disabled"));
            }
            Ok(Json(token_pair(&state, &user, session, new_token)?))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "the refresh token is invalid or expired",
        )),
        Rotation::Reused(session) => {
            tracing::warn!(%session, "refresh token reused; session revoked");
            state.hub.kick_session(session, close::SESSION_REVOKED);
            Err(ApiError::TokenReused)
        }
    }
}

/// Signs out this session: revokes the refresh token and refuses this access token from
/// now on.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>, description = "optional: the session's refresh token, revoked too"), security(("bearer" = [])), responses(
    (status = 204, description = "signed out"),
    (status = 401, body = ErrorBody),
))]
async fn logout(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Option<JsonBody<Option<RefreshRequest>>>,
) -> Result<StatusCode, ApiError> {
    let mut sessions = vec![auth.session_id];
    if let Some(JsonBody(Some(req))) = body
        && !req.refresh_token.trim().is_empty()
        && let Some(other) =
            db::sessions::session_of_token(&state.pool, &hash_token(req.refresh_token.trim()))
                .await?
        && other != auth.session_id
    {
        sessions.push(other);
    }
    for session in sessions {
        // Only the caller's own sessions are touched: `revoke` matches on the user.
        if db::sessions::revoke(&state.pool, auth.user_id, session).await? {
            state.hub.kick_session(session, close::SESSION_REVOKED);
        }
    }
    db::sessions::deny_access_token(&state.pool, &auth.jti, auth.expires_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out every session of the account, this one included.
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = [])), responses(
    (status = 204, description = "all sessions signed out"),
    (status = 401, body = ErrorBody),
))]
async fn logout_all(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    db::sessions::revoke_all(&state.pool, auth.user_id, None).await?;
    db::sessions::deny_access_token(&state.pool, &auth.jti, auth.expires_at).await?;
    state.hub.kick_user(auth.user_id, close::SESSION_REVOKED);
    Ok(StatusCode::NO_CONTENT)
}

/// The live sessions (devices) of the account.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = Vec<SessionInfo>),
    (status = 401, body = ErrorBody),
))]
async fn list_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    Ok(Json(
        db::sessions::list(&state.pool, auth.user_id, auth.session_id).await?,
    ))
}

/// Signs out one session of the account.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "session id")),
    responses(
        (status = 204, description = "session signed out"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such live session of yours"),
    ))]
async fn delete_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<SessionId>,
) -> Result<StatusCode, ApiError> {
    if !db::sessions::revoke(&state.pool, auth.user_id, id).await? {
        return Err(ApiError::NotFound("no such session"));
    }
    state.hub.kick_session(id, close::SESSION_REVOKED);
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password and signs out every other session.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])), responses(
    (status = 204, description = "password changed; other sessions signed out"),
    (status = 401, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "wrong current password or invalid new one (see fields)"),
))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = db::users::by_id(&state.pool, auth.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    let mut errors = FieldErrors::new();
    validate::new_password(
        &req.new_password,
        &req.confirm_password,
        "new_password",
        &[&user.username, &user.email],
        &mut errors,
    );
    if !password::verify(req.current_password, Some(user.password_hash.clone())).await? {
        errors.insert("current_password".into(), "is incorrect".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let hash = password::hash(req.new_password).await?;
    db::users::set_password_hash(&state.pool, auth.user_id, &hash).await?;
    for session in
        db::sessions::revoke_all(&state.pool, auth.user_id, Some(auth.session_id)).await?
    {
        state.hub.kick_session(session, close::SESSION_REVOKED);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/password-reset`
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct PasswordResetRequest {
    /// The account's email address.
    #[schema(required = true)]
    pub email: String,
}

/// The one answer to a password-reset request, whether or not the account exists.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PasswordResetAccepted {
    pub message: String,
}

/// `POST /api/auth/password-reset/confirm`
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct PasswordResetConfirm {
    /// The code from the reset link (its `token` parameter).
    #[schema(required = true)]
    pub token: String,
    #[schema(required = true)]
    pub password: String,
    #[schema(required = true)]
    pub confirm_password: String,
}

/// The account a request for a mailed link (a password reset, a new confirmation) is for:
/// the address checked, the reset limits applied (per client address, shared, and per
/// `scope` and address asked for, known or not, so the limit says nothing either), then
/// the enabled account with exactly this address, if there is one.
async fn mailed_link_account(
    state: &AppState,
    client: std::net::IpAddr,
    email: &str,
    scope: &str,
) -> Result<Option<UserRow>, ApiError> {
    let mut errors = FieldErrors::new();
    let email = validate::email(email, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    state
        .reset_limiter
        .check(client, &format!("{scope}:{email}"))?;
    Ok(db::users::by_login(&state.pool, &email)
        .await?
        .filter(|u| u.email == email && u.disabled_at.is_none()))
}

/// What every password-reset request is told.
const RESET_ACCEPTED: &str = "if an account has this email address, a reset link is on its way";

/// Asks for a password-reset link by email. The answer is the same whether or not an
/// account has this address; for one that does, a link valid `--password-reset-ttl`
/// (30 minutes) is mailed.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = PasswordResetRequest, responses(
    (status = 202, body = PasswordResetAccepted, description = "the same answer whether or not the account exists"),
    (status = 422, body = ErrorBody, description = "not an email address"),
    (status = 429, body = ErrorBody, description = "too many requests from this address or for this email; see Retry-After"),
))]
async fn request_password_reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(req): JsonBody<PasswordResetRequest>,
) -> Result<(StatusCode, Json<PasswordResetAccepted>), ApiError> {
    if let Some(user) = mailed_link_account(&state, client, &req.email, "email").await? {
        let user_id = user.user_id()?;
        if state.mailer.is_configured() {
            // Issued and mailed off the request path: the answer then takes as long
            // whether or not the account exists.
            let state = state.clone();
            state.tasks.clone().spawn(async move {
                if let Err(e) = mail_reset_link(&state, user_id, &user.email, &user.username).await {
                    tracing::error!(user = %user_id, error = %format!("{e:#}"), "password-reset mail failed");
                }
            });
        } else {
            tracing::warn!(
                user = %user_id,
                "password reset asked, but no SMTP server is configured (--smtp-url): \
                 run `confab-server admin reset-link` to give the user a link"
            );
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(PasswordResetAccepted {
            message: RESET_ACCEPTED.to_owned(),
        }),
    ))
}

async fn mail_reset_link(
    state: &AppState,
    user: UserId,
    email: &str,
    username: &str,
) -> anyhow::Result<()> {
    let reset = crate::auth::reset::issue(&state.pool, &state.config, user).await?;
    state
        .mailer
        .send_password_reset(
            email,
            username,
            &reset.link,
            &reset.token,
            state.config.password_reset_ttl / 60,
        )
        .await?;
    tracing::info!(%user, "password-reset mail sent");
    Ok(())
}

/// `POST /api/auth/verify-email/resend`
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct VerificationResendRequest {
    /// The address the account signed up with.
    #[schema(required = true)]
    pub email: String,
}

/// The one answer to a resend request, whether the address is unknown, already confirmed
/// or waiting for confirmation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VerificationResendAccepted {
    pub message: String,
}

/// What every resend request is told.
const RESEND_ACCEPTED: &str =
    "if an account with this email address is waiting for confirmation, a new link is on its way";

/// Mails a new address-confirmation link (`--require-email-verification`), valid 24 hours;
/// the links mailed before stop working. The answer is the same whether the address is
/// unknown, already confirmed or not; only an account waiting for confirmation gets mail.
#[utoipa::path(post, path = "/api/auth/verify-email/resend", tag = "auth", request_body = VerificationResendRequest, responses(
    (status = 202, body = VerificationResendAccepted, description = "the same answer whether or not an account waits for confirmation at this address"),
    (status = 422, body = ErrorBody, description = "not an email address"),
    (status = 429, body = ErrorBody, description = "too many requests from this address or for this email; see Retry-After"),
))]
async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(req): JsonBody<VerificationResendRequest>,
) -> Result<(StatusCode, Json<VerificationResendAccepted>), ApiError> {
    let user = mailed_link_account(&state, client, &req.email, "verify")
        .await?
        .filter(|u| u.email_unverified_at.is_some());
    if let Some(user) = user {
        if state.mailer.is_configured() {
            // Issued and mailed off the request path, as for a reset.
            let state = state.clone();
            state.tasks.clone().spawn(async move {
                if let Err(e) = mail_verification(&state, &user).await {
                    tracing::error!(user = %user.id, error = %format!("{e:#}"), "confirmation mail failed");
                }
            });
        } else {
            tracing::warn!(
                user = %user.id,
                "confirmation mail asked again, but no SMTP server is configured (--smtp-url): \
                 run `confab-server admin reset-link` to give the user a link"
            );
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(VerificationResendAccepted {
            message: RESEND_ACCEPTED.to_owned(),
        }),
    ))
}

/// Sets a new password with the code from a reset link, and signs out every session of
/// the account. The code works once.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm, responses(
    (status = 204, description = "password set; every session of the account signed out"),
    (status = 422, body = ErrorBody, description = "the token is invalid, used or expired, or the password breaks the rules (see fields)"),
    (status = 429, body = ErrorBody, description = "too many attempts from this address or on this account; see Retry-After"),
))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(req): JsonBody<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    reset_password(&state, client, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Redeems a reset token: checks the limits and the password rules, sets the password,
/// signs out every session. Shared by the API and the reset page.
pub(crate) async fn reset_password(
    state: &AppState,
    client: std::net::IpAddr,
    req: &PasswordResetConfirm,
) -> Result<UserId, ApiError> {
    let token = req.token.trim();
    if token.is_empty() {
        return Err(ApiError::field("token", "is required"));
    }
    state.reset_limiter.check_ip(client)?;
    let token_hash = hash_token(token);
    let invalid = || ApiError::field("token", "is invalid, already used or expired");
    let user_id = db::password_resets::peek(&state.pool, &token_hash)
        .await?
        .ok_or_else(invalid)?;
    state
        .reset_limiter
        .check_account(&format!("user:{user_id}"))?;
    let user = db::users::by_id(&state.pool, user_id)
        .await?
        .ok_or_else(invalid)?;
    let mut errors = FieldErrors::new();
    validate::new_password(
        &req.password,
        &req.confirm_password,
        "password",
        &[&user.username, &user.email],
        &mut errors,
    );
    if !errors.is_empty() {
        // The token stays valid: the user fixes the password and tries again.
        return Err(ApiError::Validation(errors));
    }
    let hash = password::hash(req.password.clone()).await?;
    // A concurrent confirmation may have redeemed it since the peek: one wins.
    let user_id = db::password_resets::redeem(&state.pool, &token_hash, &hash)
        .await?
        .ok_or_else(invalid)?;
    db::sessions::revoke_all(&state.pool, user_id, None).await?;
    state.hub.kick_user(user_id, close::SESSION_REVOKED);
    tracing::info!(user = %user_id, "password reset; every session signed out");
    Ok(user_id)
}
