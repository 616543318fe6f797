//! The host a request was signed for (the `Host` header, covered by both signature schemes) must
//! name this server, so that a request signed for another endpoint sharing the key pair is not
//! served here. Accepted without configuration: `localhost`, loopback addresses, the address
//! the client connected to, and the machine's host name, with any port (port mappings and
//! proxies change it). `allowed_hosts` adds names (`NAME` for any port, `NAME:PORT` for one);
//! `*` accepts every host.

use std::net::{IpAddr, SocketAddr};

/// The host names a request may be signed for.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    any: bool,
    /// (lowercase name, port) — `None`: any port.
    names: Vec<(String, Option<u16>)>,
    /// The machine's host name, lowercase.
    hostname: Option<String>,
}

impl AllowedHosts {
    /// From the configured entries (`NAME`, `NAME:PORT`, `[V6]:PORT`, `*`).
    pub fn new(configured: &[String]) -> AllowedHosts {
        let mut hosts = AllowedHosts {
            any: false,
            names: Vec::new(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        };
        for entry in configured {
            let entry = entry.trim();
            if entry == "*" {
                hosts.any = true;
            } else if let Some((name, port)) = split_host(entry) {
                hosts.names.push((name, port));
            }
        }
        hosts
    }

    /// `true` when `host` (a Host header value) names this server; `local` is the address the
    /// client connected to.
    pub fn allows(&self, host: &str, local: Option<SocketAddr>) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            if ip.is_loopback() || local.is_some_and(|l| same_ip(l.ip(), ip)) {
                return true;
            }
        }
        if self.hostname.as_deref() == Some(name.as_str()) {
            return true;
        }
        self.names
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }
}

/// Compares addresses, IPv4-mapped IPv6 as IPv4.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// `NAME[:PORT]` or `[V6][:PORT]` as (lowercase name without brackets or final dot, port).
/// `None` when empty or the port is not a number.
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.trim();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        match after {
            "" => (name, None),
            p => (name, Some(p.strip_prefix(':')?)),
        }
    } else if host.matches(':').count() > 1 {
        // A bare IPv6 address.
        (host, None)
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    Some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_configured_names_and_any() {
        let local: SocketAddr = "10.0.0.5:8080".parse().unwrap();
        let h = AllowedHosts::new(&["ferry.example.com".into(), "api.example.com:8443".into()]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8080",
            "10.0.0.5:8080",
            "10.0.0.5",
            "ferry.example.com:9999",
            "Ferry.Example.com.",
            "api.example.com:8443",
        ] {
            assert!(h.allows(ok, Some(local)), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.6:8080",
            "dts.tencentcloudapi.com",
            "api.example.com:8080",
            "api.example.com",
            "localhost:notaport",
            "[::1",
        ] {
            assert!(!h.allows(bad, Some(local)), "{bad}");
        }
        let mapped: SocketAddr = "[::ffff:10.0.0.5]:8080".parse().unwrap();
        assert!(h.allows("10.0.0.5:8080", Some(mapped)));
        assert!(AllowedHosts::new(&["*".into()]).allows("anything:1", None));
    }
}
