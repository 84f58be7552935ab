//! The language a request asks for (`Accept-Language`, Chinese by default), which a problem's
//! title and detail are written in.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use domain::message::Lang;

tokio::task_local! {
    static LANG: Lang;
}

/// Runs the request with the language it asks for.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let lang = Lang::negotiate(
        request
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok()),
    );
    LANG.scope(lang, next.run(request)).await
}

/// The current request's language; Chinese outside a request.
pub fn current() -> Lang {
    LANG.try_with(|lang| *lang).unwrap_or_default()
}
