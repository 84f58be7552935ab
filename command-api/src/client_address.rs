//! Who is on the other end: the socket's peer, or, when that peer is a trusted reverse proxy
//! (`ANJIA_TRUSTED_PROXIES`), the nearest untrusted address in `X-Forwarded-For`. Lock-outs,
//! rate limits and event metadata all use this one address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The client's address, as the middleware settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client address for a peer and an `X-Forwarded-For` value.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    // Walk from the nearest hop outwards; the first address we do not trust is the client.
    // Entries a client wrote itself sit further out and are never reached past an untrusted hop.
    let mut client = peer;
    if let Some(chain) = forwarded_for {
        for hop in chain.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !trusted.contains(&address) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    client
}

/// Every `X-Forwarded-For` line, in order, as one chain: a proxy may append its own line rather
/// than extend the client's, and the nearest hop is then in the last line. A line that is not
/// text becomes a hop that stops the walk.
pub fn forwarded_chain(headers: &axum::http::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().unwrap_or("?"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

pub async fn settle(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let forwarded_for = forwarded_chain(request.headers());
        let client = resolve(peer.ip(), forwarded_for.as_deref(), &state.trusted_proxies);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("an address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("10.0.0.1"), &[ip("192.0.2.1")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("192.0.2.1"), ip("192.0.2.2")];
        assert_eq!(
            resolve(ip("192.0.2.1"), Some("198.51.100.7, 192.0.2.2"), &trusted),
            ip("198.51.100.7")
        );
        // A forged entry further out is ignored: the proxy appended the real address last.
        assert_eq!(
            resolve(ip("192.0.2.1"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(resolve(ip("192.0.2.1"), None, &trusted), ip("192.0.2.1"));
        assert_eq!(
            resolve(ip("192.0.2.1"), Some("garbage"), &trusted),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_proxy_that_appends_its_own_header_line_names_the_client_in_the_last_line() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("x-forwarded-for", "1.2.3.4".parse().expect("value"));
        headers.append("x-forwarded-for", "198.51.100.7".parse().expect("value"));
        let chain = forwarded_chain(&headers);
        assert_eq!(chain.as_deref(), Some("1.2.3.4,198.51.100.7"));
        assert_eq!(
            resolve(ip("192.0.2.1"), chain.as_deref(), &[ip("192.0.2.1")]),
            ip("198.51.100.7")
        );
        let mut bad = axum::http::HeaderMap::new();
        bad.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff").expect("value"),
        );
        bad.append("x-forwarded-for", "198.51.100.8".parse().expect("value"));
        assert_eq!(
            resolve(
                ip("192.0.2.1"),
                forwarded_chain(&bad).as_deref(),
                &[ip("192.0.2.1")]
            ),
            ip("198.51.100.8")
        );
        assert_eq!(forwarded_chain(&axum::http::HeaderMap::new()), None);
    }
}
