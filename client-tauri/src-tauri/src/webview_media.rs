//! The server's pictures for the webview when it cannot fetch them itself. The webview
//! (WebKitGTK, WebView2, WKWebView) trusts only the operating system's CAs, so with a
//! private CA (`CONFAB_CA_FILE`) every `<img>` of an `https://` server fails its TLS
//! check. The app then points the webview at its own `confab-media:` scheme, and answers
//! those requests here through the core's HTTP client, which also trusts the CA file
//! (`ApiClient::fetch_media`). Only the picked server's file and picture links go
//! through; anything else is refused. Otherwise the webview loads them from the server.

use crate::AppState;
use tauri::http::{Request, Response, StatusCode, header};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};
use url::Url;

/// The scheme the webview loads proxied pictures from.
pub const SCHEME: &str = "confab-media";

/// The origin of [`SCHEME`] as the webview spells it (Windows' WebView2 has no custom
/// schemes: Tauri maps them to `http://<scheme>.localhost`).
fn origin() -> &'static str {
    if cfg!(windows) {
        "http://confab-media.localhost"
    } else {
        "confab-media://localhost"
    }
}

/// The origin the webview is to load this server's links from instead of the server's
/// own, when it cannot verify the server (an `https://` server and a CA file in effect).
fn proxy_for(server: &Url) -> Option<&'static str> {
    (server.scheme() == "https" && confab_core::api::extra_ca_in_effect()).then(origin)
}

/// Where the webview loads the server's picture paths from (`/api/pictures/...` is put
/// after it): the server, or [`SCHEME`] when the webview cannot verify the server.
pub fn picture_base(server: &str) -> String {
    match Url::parse(server).ok().as_ref().and_then(proxy_for) {
        Some(origin) => format!("{origin}/"),
        None => server.to_owned(),
    }
}

/// The address the webview loads an absolute link of the server from.
pub fn for_webview(url: &Url) -> String {
    rewrite(url, proxy_for(url))
}

/// `url`, or its path and query on `origin`.
fn rewrite(url: &Url, origin: Option<&str>) -> String {
    let Some(origin) = origin else {
        return url.to_string();
    };
    let mut out = format!("{origin}{}", url.path());
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Answers a [`SCHEME`] request: the same path and query on the picked server, fetched
/// with the app's own trust (and its `Range`, for a part), or an error status with a
/// line of text.
pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    tauri::async_runtime::spawn(async move {
        let response = match answer(&app, &request).await {
            Ok(response) => response,
            Err((status, reason)) => {
                tracing::debug!(uri = %request.uri(), %reason, "a picture for the webview failed");
                Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(reason.into_bytes())
                    .unwrap_or_default()
            }
        };
        responder.respond(response);
    });
}

async fn answer<R: Runtime>(
    app: &tauri::AppHandle<R>,
    request: &Request<Vec<u8>>,
) -> Result<Response<Vec<u8>>, (StatusCode, String)> {
    if request.method() != tauri::http::Method::GET {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "only GET".into()));
    }
    let link = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let state = app.try_state::<AppState>().ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        "the app is starting".into(),
    ))?;
    let client = state
        .session
        .client()
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let fetched = client.fetch_media(&link, range).await.map_err(|e| {
        use confab_core::api::{ApiError, TransferError};
        let status = match e {
            TransferError::Api(ApiError::InvalidServerUrl { .. }) => StatusCode::NOT_FOUND,
            TransferError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_GATEWAY,
        };
        (status, e.to_string())
    })?;
    let mut response = Response::builder().status(fetched.status);
    for (name, value) in &fetched.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(fetched.body)
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_link_keeps_its_path_and_query_on_the_apps_own_origin() {
        let url = Url::parse("https://chat.example:8443/api/files/f1/preview?sig=a%2Fb&exp=9")
            .expect("url");
        assert_eq!(
            rewrite(&url, Some("confab-media://localhost")),
            "confab-media://localhost/api/files/f1/preview?sig=a%2Fb&exp=9"
        );
        let picture = Url::parse("https://chat.example/api/pictures/p1").expect("url");
        assert_eq!(
            rewrite(&picture, Some("http://confab-media.localhost")),
            "http://confab-media.localhost/api/pictures/p1"
        );
        assert_eq!(rewrite(&url, None), url.as_str());
    }

    #[test]
    fn plain_http_servers_are_never_proxied() {
        let plain = Url::parse("http://10.0.0.2:8080/api/files/f/preview?sig=x").expect("url");
        assert_eq!(for_webview(&plain), plain.as_str());
        assert_eq!(
            picture_base("http://10.0.0.2:8080/"),
            "http://10.0.0.2:8080/"
        );
    }
}
