//! The REST API. Each resource module owns its router; this one stitches them together
//! with the generated OpenAPI document and the Swagger UI.

pub mod auth;
pub mod contacts;
pub mod health;
pub mod ice;
pub mod messages;
pub mod pages;
pub mod rooms;
pub mod users;

use crate::state::AppState;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab API", description = "Accounts, sessions, rooms and ICE servers. Real-time signaling is on the WebSocket at /ws; see docs/protocol.md."),
    modifiers(&BearerAuth),
    components(schemas(shared::ErrorBody, shared::ErrorDetail, shared::ErrorCode)),
    tags(
        (name = "auth", description = "Registration, login, token refresh and sessions"),
        (name = "users", description = "Profiles"),
        (name = "rooms", description = "Rooms, members and invites"),
        (name = "contacts", description = "User search, contacts, contact requests, blocks and direct rooms"),
        (name = "messages", description = "Room timelines: messages, edits, reactions, catch-up, read markers"),
        (name = "calls", description = "STUN and TURN servers for WebRTC"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(users::router())
        .merge(rooms::router())
        .merge(contacts::router())
        .merge(messages::router())
        .merge(ice::router())
        .merge(health::router())
}

/// REST routes plus `/api/openapi.json` and the Swagger UI at `/api/docs`.
pub fn router() -> Router<AppState> {
    let (router, api) = api_router().split_for_parts();
    router.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", api))
}
