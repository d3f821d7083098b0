//! The REST API. Each resource module owns its router; this one stitches them together
//! with the generated OpenAPI document and the Swagger UI.

pub mod auth;
pub mod communities;
pub mod contacts;
pub mod files;
pub mod health;
pub mod ice;
pub mod json;
pub mod messages;
pub mod pages;
pub mod rooms;
pub mod search;
pub mod users;

use crate::state::AppState;
use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Type};
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
        (name = "communities", description = "Communities: members, roles, bans, invite links and channels"),
        (name = "search", description = "Message search over every room you can read"),
        (name = "files", description = "Uploads, attachments' signed links, avatars and community icons"),
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

/// Documents, on every operation, the error answers that come from the layers and
/// extractors rather than from the handler's own logic, so the document lists every status
/// an endpoint can answer, each with the JSON error shape (`ErrorBody`):
/// - 400: a path or query parameter that does not parse, or a body that is not JSON;
/// - 401: no, or a bad, access token (operations with a security requirement);
/// - 413: a body over the server's limit; 415: a body that is not `application/json`;
/// - 422: a JSON body of the wrong shape or failing validation;
/// - `Retry-After` on every 429 a handler documents (the rate limits).
///
/// Applied in [`router`], after the handlers' own annotations are merged: a status a handler documents
/// itself (with its own description) is kept as it is.
struct ErrorResponses;

impl ErrorResponses {
    fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .into()
    }

    fn operation(op: &mut Operation, secured_by_default: bool) {
        let params = op.parameters.as_deref().unwrap_or_default();
        let has_params = params.iter().any(|p| match p {
            RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query),
            RefOr::Ref(_) => true,
        });
        let has_body = op.request_body.is_some();
        let secured = op
            .security
            .as_ref()
            .map_or(secured_by_default, |s| !s.is_empty());
        let responses = &mut op.responses.responses;
        let mut add = |status: &str, description: &str| {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| Self::error(description));
        };
        if has_params || has_body {
            add(
                "400",
                "malformed request: a parameter that does not parse, or a body that is not JSON (`bad_request`)",
            );
        }
        if secured {
            add(
                "401",
                "no access token, or one that is expired, revoked or malformed (`unauthorized`)",
            );
        }
        if has_body {
            add(
                "413",
                "the body is over the server's size limit (`payload_too_large`)",
            );
            add(
                "415",
                "the body is not `application/json` (`unsupported_media_type`)",
            );
            add(
                "422",
                "the JSON body has the wrong shape, or fields fail validation (`validation_failed`, `fields` says which)",
            );
        }
        if let Some(RefOr::T(response)) = responses.get_mut("429") {
            response.headers.insert(
                "Retry-After".to_owned(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
                        ))
                        .description(Some("seconds to wait before trying again"))
                        .build(),
                ),
            );
        }
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let secured_by_default = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                Self::operation(op, secured_by_default);
            }
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
        .merge(files::router())
        .merge(communities::router())
        .merge(search::router())
        .merge(ice::router())
        .merge(health::router())
}

/// REST routes plus `/api/openapi.json` and the Swagger UI at `/api/docs`.
pub fn router() -> Router<AppState> {
    let (router, mut api) = api_router().split_for_parts();
    ErrorResponses.modify(&mut api);
    router.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", api))
}
