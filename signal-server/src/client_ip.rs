//! The client's address: the TCP peer, or, when the peer is one of `--trusted-proxies`,
//! the address that proxy names in `Forwarded` (RFC 7239) or `X-Forwarded-For`. Rate
//! limits, the sessions list and the request log all use it.
//!
//! Hand-written because the crates that do this (axum-client-ip and the like) either
//! trust one fixed header regardless of who sent it, or pick one hop by position; here a
//! header is believed only from a trusted peer, and the chain is walked from the right
//! past every trusted hop, so a client cannot choose its own address by sending a header.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client address of a request, as the handlers use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| anyhow::anyhow!("the connection's peer address is unknown"))?;
        Ok(Self(resolve(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// The client address for a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it got the request from, so from the right: the
    // first address that is not a trusted proxy is the client. An entry that cannot be
    // read ("unknown", an obfuscated name) ends the walk at the last hop known.
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The forwarding chain, oldest hop first: from `Forwarded` when a proxy sent one, else
/// from `X-Forwarded-For`. `None` marks an entry that names no address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value))
                })?
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `"[2001:db8::1]:4711"` (quoted in `Forwarded`).
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

/// Parses one `--trusted-proxies` entry: a CIDR, or a single address.
pub fn parse_proxy(value: &str) -> Result<IpNet, String> {
    let v = value.trim();
    v.parse::<IpNet>()
        .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{v:?} is not an address or CIDR such as 10.0.0.0/8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_proxy(s).unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(resolve(ip("192.0.2.7"), &h, &[]), ip("192.0.2.7"));
        assert_eq!(
            resolve(ip("192.0.2.7"), &h, &nets(&["127.0.0.1"])),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn the_chain_is_walked_from_the_right_past_trusted_hops() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // A client-sent (forged) first entry, then what two proxies appended.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.1.2.3")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.5"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.5"));
        // All trusted: the oldest hop.
        let h = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_read_with_ports_quotes_and_ipv6() {
        let trusted = nets(&["::1/128"]);
        let h = headers(&[(
            "forwarded",
            "for=198.51.100.1;proto=https, For=\"[2001:db8::7]:4711\";by=x",
        )]);
        assert_eq!(resolve(ip("::1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(resolve(ip("::1"), &h, &trusted), ip("::1"));
        let h = headers(&[("x-forwarded-for", "198.51.100.1:5555")]);
        assert_eq!(resolve(ip("::1"), &h, &trusted), ip("198.51.100.1"));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_networks() {
        let h = headers(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), &h, &nets(&["127.0.0.0/8"])),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        assert!(parse_proxy("10.0.0.0/33").is_err());
        assert!(parse_proxy("example.org").is_err());
        assert_eq!(
            parse_proxy(" 10.0.0.1 ").unwrap().to_string(),
            "10.0.0.1/32"
        );
    }
}
