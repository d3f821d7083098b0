//! The few HTML pages the server serves to a browser: where the password-reset and
//! address-confirmation mails' links and an invite link lead. No script, no outside resources; every page is sent
//! with a strict CSP, `no-referrer` (the token is in the URL) and `no-store`.

use super::auth::{PasswordResetConfirm, reset_password};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reset-password", get(reset_form).post(reset_submit))
        .route("/verify-email", get(verify_form).post(verify_submit))
        .route("/invite/{token}", get(invite))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

/// The form behind the reset mail's link.
async fn reset_form(Query(q): Query<TokenQuery>) -> Response {
    if q.token.trim().is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Reset your password",
            "<p>This link is incomplete: open the whole link from the email.</p>",
        );
    }
    page(
        StatusCode::OK,
        "Reset your password",
        &reset_form_body(&q.token, None),
    )
}

fn reset_form_body(token: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"problem\">{}</p>\n", escape(p)))
        .unwrap_or_default();
    format!(
        "{problem}<form method=\"post\" action=\"/reset-password\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
         <label>New password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required minlength=\"{}\"></label>\n\
         <label>Repeat it <input type=\"password\" name=\"confirm_password\" autocomplete=\"new-password\" required></label>\n\
         <button type=\"submit\">Set the password</button>\n</form>\n\
         <p>Setting it signs out every device; sign in again with the new password.</p>",
        escape(token),
        shared::api::PASSWORD_MIN,
    )
}

/// The form's submission: the same checks and effects as the API's confirmation.
async fn reset_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Form(req): Form<PasswordResetConfirm>,
) -> Response {
    match reset_password(&state, client, &req).await {
        Ok(_) => page(
            StatusCode::OK,
            "Password set",
            "<p>Your new password is set, and every device was signed out. Sign in from the \
             Confab app with the new password.</p>",
        ),
        Err(ApiError::Validation(fields)) if !fields.contains_key("token") => {
            let problem = fields
                .iter()
                .map(|(field, message)| {
                    let field = if field == "confirm_password" {
                        "The repeated password"
                    } else {
                        "The password"
                    };
                    format!("{field} {message}.")
                })
                .collect::<Vec<_>>()
                .join(" ");
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Reset your password",
                &reset_form_body(&req.token, Some(&problem)),
            )
        }
        Err(ApiError::Validation(_)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This link no longer works",
            "<p>The link was already used, has expired, or is incomplete. Ask for a new one \
             from the app's \u{201c}Forgot password?\u{201d}.</p>",
        ),
        Err(ApiError::RateLimited { .. }) => page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "<p>Too many attempts from here; try again later.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the reset page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p>The password could not be set; try again in a moment.</p>",
            )
        }
    }
}

/// The confirmation mail's link: a button, so that a mail scanner fetching the link does
/// not use it up.
async fn verify_form(Query(q): Query<TokenQuery>) -> Response {
    if q.token.trim().is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Confirm your email address",
            "<p>This link is incomplete: open the whole link from the email.</p>",
        );
    }
    page(
        StatusCode::OK,
        "Confirm your email address",
        &format!(
            "<form method=\"post\" action=\"/verify-email\">\n\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
             <button type=\"submit\">Confirm my address</button>\n</form>",
            escape(&q.token)
        ),
    )
}

async fn verify_submit(State(state): State<AppState>, Form(q): Form<TokenQuery>) -> Response {
    let hash = crate::auth::tokens::hash_token(q.token.trim());
    match crate::db::email_verifications::redeem(&state.pool, &hash).await {
        Ok(Some(username)) => page(
            StatusCode::OK,
            "Address confirmed",
            &format!(
                "<p>Thank you, {}: your address is confirmed. Sign in from the Confab app.</p>",
                escape(&username)
            ),
        ),
        Ok(None) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This link no longer works",
            "<p>The link was already used, has expired, or is incomplete. Resetting your \
             password by email (\u{201c}Forgot password?\u{201d} in the app) confirms your \
             address too.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e, "the confirmation page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p>The address could not be confirmed; try again in a moment.</p>",
            )
        }
    }
}

/// Where an invite link leads in a browser: how to join with the app.
async fn invite(Path(token): Path<String>) -> Response {
    let token = escape(&token);
    page(
        StatusCode::OK,
        "You are invited to a Confab group",
        &format!(
            "<p>Someone invited you to a group on this Confab server.</p>\n\
             <ol><li>Install the Confab app and sign in (or create an account) on this \
             server.</li>\n\
             <li><a href=\"confab://invite/{token}\">Open the invite in the app</a>, or \
             paste this page's address into the app's \u{201c}Join with an invite\u{201d}.</li></ol>\n\
             <p>The invite code is <code>{token}</code>.</p>"
        ),
    )
}

/// A small HTML page.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} \u{2013} Confab</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5 }}\n\
         label {{ display: block; margin: 0.75rem 0 }} input {{ display: block; width: 100%; padding: 0.4rem }}\n\
         .problem {{ color: #a00 }}\n</style></head>\n\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// HTML escaping for text and attribute values.
fn escape(s: &str) -> String {
    crate::mail::escape(s)
}
