//! Accounts and sessions, told as small stories over real HTTP, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_databases!(
    registration_succeeds,
    registration_reports_every_invalid_field,
    duplicate_email_or_username_is_a_conflict,
    login_works_with_username_or_email,
    wrong_credentials_do_not_reveal_whether_the_account_exists,
    logout_denylists_the_access_token,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    sessions_can_be_listed_and_revoked,
    password_change_signs_out_other_sessions,
    profiles_show_public_fields_only,
    tampered_or_missing_tokens_are_refused,
    tokens_survive_a_restart,
    concurrent_refreshes_let_one_through,
);

async fn registration_succeeds(db: Db) {
    let server = TestServer::start(db).await;
    let (status, user) = server
        .post(
            "/api/auth/register",
            None,
            json!({"username": "Alice", "email": "Alice@Example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["username"], "alice", "usernames are stored lowercased");
    assert_eq!(user["email"], "alice@example.com");
    assert!(user["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    server.stop().await;
}

async fn registration_reports_every_invalid_field(db: Db) {
    let server = TestServer::start(db).await;
    let (status, body) = server
        .post(
            "/api/auth/register",
            None,
            json!({"username": "a b", "email": "not-an-email", "password": "password1", "confirm_password": "other"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    for field in ["username", "email", "password", "confirm_password"] {
        assert!(fields.contains_key(field), "{field} missing in {body}");
    }

    // Missing fields are field errors too, not a parse failure.
    let (status, body) = server.post("/api/auth/register", None, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"]["username"], "is required");

    // Too short and too long.
    let long = "x".repeat(129);
    let (_, body) = server
        .post("/api/auth/register", None, json!({"username": "ab", "email": "ab@example.com", "password": long, "confirm_password": long}))
        .await;
    assert!(
        body["error"]["fields"]["username"]
            .as_str()
            .unwrap()
            .contains("3 to 32")
    );
    assert!(
        body["error"]["fields"]["password"]
            .as_str()
            .unwrap()
            .contains("8 to 128")
    );

    // A body that is not JSON gets the same error shape.
    let resp = server
        .http
        .post(format!("{}/api/auth/register", server.base))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    server.stop().await;
}

async fn duplicate_email_or_username_is_a_conflict(db: Db) {
    let server = TestServer::start(db).await;
    assert_eq!(server.register("bob").await.0, StatusCode::CREATED);

    let (status, body) = server
        .post("/api/auth/register", None, json!({"username": "bobby", "email": "BOB@example.com", "password": PASSWORD, "confirm_password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    assert!(body["error"]["fields"]["email"].is_string());

    let (status, body) = server
        .post("/api/auth/register", None, json!({"username": "BOB", "email": "other@example.com", "password": PASSWORD, "confirm_password": PASSWORD}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "usernames are unique without regard to case"
    );
    assert!(body["error"]["fields"]["username"].is_string());
    server.stop().await;
}

async fn login_works_with_username_or_email(db: Db) {
    let server = TestServer::start(db).await;
    server.register("carol").await;
    for login in ["carol", "CAROL", "carol@example.com"] {
        let (status, body) = server.login(login, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{login}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["user"]["username"], "carol");
        let token = body["access_token"].as_str().unwrap();
        let (status, me) = server.get("/api/users/me", Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["email"], "carol@example.com");
    }
    server.stop().await;
}

async fn wrong_credentials_do_not_reveal_whether_the_account_exists(db: Db) {
    let server = TestServer::start(db).await;
    server.register("dave").await;
    let (s1, wrong_password) = server.login("dave", "Not-The-Password-1").await;
    let (s2, no_account) = server.login("nobody", "Not-The-Password-1").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong_password, no_account);
    assert_eq!(no_account["error"]["code"], "invalid_credentials");
    server.stop().await;
}

async fn logout_denylists_the_access_token(db: Db) {
    let server = TestServer::start(db).await;
    let erin = server.user("erin").await;
    assert_eq!(
        server.get("/api/users/me", Some(&erin.token)).await.0,
        StatusCode::OK
    );

    let (status, _) = server
        .post(
            "/api/auth/logout",
            Some(&erin.token),
            json!({"refresh_token": erin.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = server.get("/api/users/me", Some(&erin.token)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the same access token is refused after logout"
    );
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": erin.refresh}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the refresh token is revoked too"
    );
    server.stop().await;
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(db: Db) {
    let server = TestServer::start(db).await;
    let frank = server.user("frank").await;

    let (status, first) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": frank.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_ne!(
        first["refresh_token"],
        frank.refresh.as_str(),
        "a new refresh token every time"
    );
    assert_eq!(first["session_id"], frank.session.as_str(), "same session");
    let new_access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get("/api/users/me", Some(&new_access)).await.0,
        StatusCode::OK
    );

    // Someone replays the old refresh token: the whole family is revoked.
    let (status, body) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": frank.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "token_reused");
    let (status, _) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated token died with its family"
    );
    assert_eq!(
        server.get("/api/users/me", Some(&new_access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Garbage is simply invalid.
    let (status, body) = server
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": "nonsense"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    server.stop().await;
}

async fn sessions_can_be_listed_and_revoked(db: Db) {
    let server = TestServer::start(db).await;
    let laptop = server.user("grace").await;
    let phone = server.sign_in("grace").await;

    let (status, sessions) = server.get("/api/auth/sessions", Some(&laptop.token)).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop.session.as_str());

    let (status, _) = server
        .delete(
            &format!("/api/auth/sessions/{}", phone.session),
            Some(&laptop.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/api/users/me", Some(&phone.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = server
        .delete(
            &format!("/api/auth/sessions/{}", phone.session),
            Some(&laptop.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");

    // Someone else's session is not yours to delete.
    let heidi = server.user("heidi").await;
    let (status, _) = server
        .delete(
            &format!("/api/auth/sessions/{}", laptop.session),
            Some(&heidi.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let tablet = server.sign_in("grace").await;
    let (status, _) = server
        .post("/api/auth/logout-all", Some(&laptop.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [&laptop.token, &tablet.token] {
        assert_eq!(
            server.get("/api/users/me", Some(token)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        server.get("/api/users/me", Some(&heidi.token)).await.0,
        StatusCode::OK
    );
    server.stop().await;
}

async fn password_change_signs_out_other_sessions(db: Db) {
    let server = TestServer::start(db).await;
    let here = server.user("ivan").await;
    let elsewhere = server.sign_in("ivan").await;
    let new_password = "Brand-New-Secret-77";

    let (status, body) = server
        .post("/api/auth/password", Some(&here.token), json!({"current_password": "wrong-one-123", "new_password": new_password, "confirm_password": new_password}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["current_password"].is_string());

    let (status, _) = server
        .post("/api/auth/password", Some(&here.token), json!({"current_password": PASSWORD, "new_password": new_password, "confirm_password": new_password}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/api/users/me", Some(&here.token)).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        server.get("/api/users/me", Some(&elsewhere.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.login("ivan", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.login("ivan", new_password).await.0, StatusCode::OK);
    server.stop().await;
}

async fn profiles_show_public_fields_only(db: Db) {
    let server = TestServer::start(db).await;
    let judy = server.user("judy").await;
    let mallory = server.user("mallory").await;

    let (status, me) = server
        .request(
            reqwest::Method::PATCH,
            "/api/users/me",
            Some(&judy.token),
            Some(json!({"display_name": "  Judy J. ", "status_text": "in a meeting"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["display_name"], "Judy J.");
    assert_eq!(me["status_text"], "in a meeting");

    let (status, public) = server
        .get(&format!("/api/users/{}", judy.id), Some(&mallory.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public["display_name"], "Judy J.");
    assert!(public.get("email").is_none(), "email is private: {public}");

    let (status, me) = server
        .request(
            reqwest::Method::PATCH,
            "/api/users/me",
            Some(&judy.token),
            Some(json!({"status_text": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(me["status_text"].is_null(), "an empty string clears");
    assert_eq!(me["display_name"], "Judy J.", "absent fields stay");

    let (status, body) = server
        .request(
            reqwest::Method::PATCH,
            "/api/users/me",
            Some(&judy.token),
            Some(json!({"display_name": "x".repeat(65)})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );

    let (status, body) = server.get("/api/users/not-a-uuid", Some(&judy.token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, _) = server
        .get(
            &format!("/api/users/{}", uuid::Uuid::new_v4()),
            Some(&judy.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn tampered_or_missing_tokens_are_refused(db: Db) {
    let server = TestServer::start(db).await;
    let ken = server.user("ken").await;

    let (status, body) = server.get("/api/users/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    // Change one character of the signature.
    let mut tampered = ken.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        server.get("/api/users/me", Some(&tampered)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // An unsigned token ("alg": "none") with the same claims.
    let parts: Vec<&str> = ken.token.split('.').collect();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    assert_eq!(
        server.get("/api/users/me", Some(&none)).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

async fn tokens_survive_a_restart(db: Db) {
    let mut server = TestServer::start(db).await;
    let liz = server.user("liz").await;
    server.restart().await;
    let (status, me) = server.get("/api/users/me", Some(&liz.token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the signing secret was kept in the data dir: {me}"
    );
    server.stop().await;
}

/// Login and registration are rate limited per account and per client address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_register_are_rate_limited() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &["--auth-rate-per-account", "3", "--auth-rate-per-ip", "8"],
    )
    .await;
    server.register("mike").await;
    for _ in 0..3 {
        assert_eq!(
            server.login("mike", "Wrong-password-0").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = server
        .http
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"login": "mike", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Other accounts from the same address: limited once the per-address budget is spent
    // (5 attempts were counted above).
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            server
                .login(&format!("someone{i}"), "Wrong-password-0")
                .await
                .0,
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(
        server.register("newcomer").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;
}

/// Liveness, readiness, and the generated API description with its UI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_api_docs() {
    let server = TestServer::start(Db::Sqlite).await;
    assert_eq!(
        server.get("/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        server.get("/readyz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );

    let (status, doc) = server.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/logout-all",
        "/api/auth/sessions",
        "/api/auth/sessions/{id}",
        "/api/auth/password",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
        "/api/users/me",
        "/api/users/{id}",
        "/api/rooms",
        "/api/rooms/{id}",
        "/api/rooms/{id}/join",
        "/api/rooms/{id}/leave",
        "/api/rooms/{id}/invites",
        "/api/invites/{token}/accept",
        "/api/ice-servers",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let html = server
        .http
        .get(format!("{}/api/docs/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert!(
        html.text().await.unwrap().contains("swagger"),
        "Swagger UI is served from the binary"
    );

    let (status, body) = server.get("/no/such/path", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = server.delete("/api/auth/login", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    server.stop().await;
}

/// The same refresh token presented several times at once: one exchange wins, the next is
/// reuse (which revokes the session, so any later one is simply invalid), and none is a
/// server error.
async fn concurrent_refreshes_let_one_through(db: Db) {
    let server = TestServer::start(db).await;
    let nina = server.user("nina").await;
    let attempts = (0..5).map(|_| {
        server.post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": nina.refresh}),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let reused = results
        .iter()
        .filter(|(_, b)| b["error"]["code"] == "token_reused")
        .count();
    let refused = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, refused), (1, 4), "{results:?}");
    assert!(reused >= 1, "{results:?}");
    server.stop().await;
}
