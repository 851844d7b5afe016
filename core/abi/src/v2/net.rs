//! Addresses as values rather than text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use abi_stable::StableAbi;

/// A socket address. IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`) with `v4` set.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetAddr {
    pub ip: [u8; 16],
    pub port: u16,
    /// The address is IPv4 (`ip` holds it IPv4-mapped).
    pub v4: bool,
}

impl NetAddr {
    /// `0.0.0.0:0`, for connections without an address (tests, internal sources).
    pub const UNSPECIFIED: NetAddr = NetAddr {
        ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0],
        port: 0,
        v4: true,
    };

    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.ip);
        match (self.v4, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }

    /// Parses `IP:PORT` (`[V6]:PORT` for IPv6); anything else gives [`NetAddr::UNSPECIFIED`].
    pub fn parse_or_unspecified(text: &str) -> NetAddr {
        text.parse::<SocketAddr>()
            .map(NetAddr::from)
            .unwrap_or(NetAddr::UNSPECIFIED)
    }
}

impl From<SocketAddr> for NetAddr {
    fn from(a: SocketAddr) -> Self {
        let (ip, v4) = match a.ip() {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), true),
            IpAddr::V6(v6) => (v6.octets(), false),
        };
        NetAddr {
            ip,
            port: a.port(),
            v4,
        }
    }
}

impl From<(Ipv4Addr, u16)> for NetAddr {
    fn from((ip, port): (Ipv4Addr, u16)) -> Self {
        NetAddr::from(SocketAddr::from((ip, port)))
    }
}

impl std::fmt::Display for NetAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.socket_addr().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        for text in [
            "127.0.0.1:1935",
            "[::1]:80",
            "[2001:db8::5]:65535",
            "0.0.0.0:0",
        ] {
            let a = NetAddr::parse_or_unspecified(text);
            assert_eq!(a.to_string(), text);
        }
        assert_eq!(
            NetAddr::parse_or_unspecified("nonsense"),
            NetAddr::UNSPECIFIED
        );
        assert!(NetAddr::parse_or_unspecified("10.0.0.1:1").v4);
        assert!(!NetAddr::parse_or_unspecified("[::ffff:10.0.0.1]:1").v4);
    }
}
