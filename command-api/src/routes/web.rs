//! The web apps' built files (`web/dist`, written by `vite build`), served by `anjia serve`
//! itself: each app's page at its path with a history-mode fallback (any path under `/admin/`
//! that is not a file answers the console's page, so the browser's router takes over), the
//! hashed scripts and styles under `/assets/` with a year's cache, the pages with `no-cache`.
//! `/` sends a phone to the customers' and workers' app (`/app/`) and a desktop browser to the
//! console (`/admin/`). Where the build is missing, the app's path answers a page that says how
//! to build it.
//!
//! These routes sit outside the API's middleware (no authorisation, idempotency or read
//! positions): they serve the same files to everyone, and the API answers each call the pages
//! make by the caller's role.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

/// The apps the build holds, by the path each is served at: the console, and the phone app of
/// customers and workers.
const APPS: &[&str] = &["admin", "app"];

/// What the pages may load: only this origin's scripts, styles, images and API (Element Plus
/// sets inline style attributes, hence `'unsafe-inline'` for styles only).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Where the built files are (`ANJIA_WEB_DIR`, default `web/dist` under the working folder).
#[derive(Clone)]
struct WebFiles {
    dir: Arc<PathBuf>,
}

pub fn router(dir: PathBuf) -> Router {
    let mut router = Router::new()
        .route("/", get(root))
        .route("/assets/{*path}", get(asset));
    for app in APPS {
        router = router
            .route(
                &format!("/{app}"),
                get(move || async move { Redirect::permanent(&format!("/{app}/")) }),
            )
            .route(
                &format!("/{app}/"),
                get(move |files: State<WebFiles>, accepted: HeaderMap| {
                    page(files, app, None, accepted)
                }),
            )
            .route(
                &format!("/{app}/{{*path}}"),
                get(
                    move |files: State<WebFiles>,
                          UrlPath(path): UrlPath<String>,
                          accepted: HeaderMap| {
                        page(files, app, Some(path), accepted)
                    },
                ),
            );
    }
    router.with_state(WebFiles { dir: Arc::new(dir) })
}

/// A browser opening the bare address goes to its app: phones to the phone app, the rest to
/// the console (whose sign-in page sends customers and workers on).
async fn root(headers: HeaderMap) -> Redirect {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    Redirect::to(if is_phone(agent) { "/app/" } else { "/admin/" })
}

/// Whether a user agent is a phone's browser (or WeChat's, which opens links on phones).
fn is_phone(agent: &str) -> bool {
    [
        "Mobile",
        "Android",
        "iPhone",
        "iPod",
        "MicroMessenger",
        "HarmonyOS",
    ]
    .iter()
    .any(|mark| agent.contains(mark))
}

/// A file of `app` (its icons, its manifest), or else its page.
async fn page(
    State(files): State<WebFiles>,
    app: &str,
    path: Option<String>,
    accepted: HeaderMap,
) -> Response {
    let folder = files.dir.join(app);
    if let Some(file) = path.as_deref().and_then(|path| inside(&folder, path)) {
        if let Some(response) = read(&file, &accepted, "no-cache").await {
            return response;
        }
    }
    match read(&folder.join("index.html"), &accepted, "no-cache").await {
        Some(mut response) => {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            response
        }
        None => not_built(app),
    }
}

/// A hashed script, style or image: the name changes with the content, so it is cached a year.
async fn asset(
    State(files): State<WebFiles>,
    UrlPath(path): UrlPath<String>,
    accepted: HeaderMap,
) -> Response {
    let folder = files.dir.join("assets");
    let Some(file) = inside(&folder, &path) else {
        return ApiError::not_found("文件", "file").into_response();
    };
    match read(&file, &accepted, "public, max-age=31536000, immutable").await {
        Some(response) => response,
        None => ApiError::not_found("文件", "file").into_response(),
    }
}

/// A file of the build, as the smallest copy the browser accepts: the build writes a Brotli
/// (`.br`) and a gzip (`.gz`) copy beside each compressible file (`web/scripts/compress.mjs`).
/// `None` when the file is not there.
async fn read(file: &Path, accepted: &HeaderMap, cache: &'static str) -> Option<Response> {
    let encodings = accepted
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    for (encoding, suffix) in [("br", "br"), ("gzip", "gz")] {
        if !accepts(&encodings, encoding) {
            continue;
        }
        let mut compressed = file.as_os_str().to_owned();
        compressed.push(".");
        compressed.push(suffix);
        if let Ok(bytes) = tokio::fs::read(&compressed).await {
            let mut response = file_response(file, bytes, cache);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            return Some(response);
        }
    }
    let bytes = tokio::fs::read(file).await.ok()?;
    let mut response = file_response(file, bytes, cache);
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Some(response)
}

/// Whether an `Accept-Encoding` list takes `encoding` (named, and not with `q=0`).
fn accepts(list: &str, encoding: &str) -> bool {
    list.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        parts.next() == Some(encoding)
            && !parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            })
    })
}

/// `path` under `folder`, if it names a file name by name (no `..`, no absolute path, no
/// hidden files).
fn inside(folder: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    let plain = relative.components().all(|component| match component {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    (plain && !path.is_empty()).then(|| folder.join(relative))
}

fn file_response(file: &Path, bytes: Vec<u8>, cache: &'static str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn content_type(file: &Path) -> &'static str {
    let extension = file
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The page that stands in for an app that was not built.
fn not_built(app: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>安家 · 网页端尚未构建 / not built</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.6\">\
         <h1>网页端尚未构建 / The web apps are not built</h1>\
         <p>此服务没有找到 <code>/{app}/</code> 的构建文件。在项目根目录运行 <code>scripts/start</code>（会自动构建），\
         或单独构建：<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>；构建目录可用 <code>ANJIA_WEB_DIR</code> 指定。</p>\
         <p>This server found no build of <code>/{app}/</code>. Run <code>scripts/start</code> at the project's root (it builds \
         them), or build them alone: <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>; <code>ANJIA_WEB_DIR</code> \
         names the build folder.</p></body></html>"
    );
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_name_files() {
        let folder = Path::new("/srv/web/assets");
        assert_eq!(
            inside(folder, "index-abc.js"),
            Some(PathBuf::from("/srv/web/assets/index-abc.js"))
        );
        assert_eq!(
            inside(folder, "fonts/a.woff2"),
            Some(PathBuf::from("/srv/web/assets/fonts/a.woff2"))
        );
        for refused in [
            "../secret",
            "a/../../b",
            "/etc/passwd",
            ".env",
            "a/.git/x",
            "",
        ] {
            assert_eq!(inside(folder, refused), None, "{refused}");
        }
    }

    #[test]
    fn phones_are_told_from_desktops_by_their_user_agent() {
        assert!(is_phone(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
        ));
        assert!(is_phone(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126 Mobile Safari/537.36"
        ));
        assert!(is_phone(
            "Mozilla/5.0 (Linux; Android 13) MicroMessenger/8.0.47"
        ));
        assert!(!is_phone(
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/156 Safari/537.36"
        ));
        assert!(!is_phone(""));
    }

    #[test]
    fn an_encoding_is_taken_when_named_without_a_zero_weight() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("gzip;q=0.8,br;q=1.0", "gzip"));
        assert!(!accepts("gzip, deflate", "br"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(!accepts("", "gzip"));
    }

    #[test]
    fn files_get_their_content_types() {
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.CSS")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}
