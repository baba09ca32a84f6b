//! Which connections a command is about: an address prefix, a port, a process.
//! One filter type for sockets, trace and analyze.

use std::net::IpAddr;

/// An address prefix: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 prefixes.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `--port`, `--addr CIDR`, `--pid`: a connection matches when every given part
/// matches (the port and prefix on either end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    pub port: Option<u16>,
    pub addr: Option<Cidr>,
    pub pid: Option<u32>,
}

impl EndpointFilter {
    pub fn is_empty(&self) -> bool {
        self.port.is_none() && self.addr.is_none() && self.pid.is_none()
    }

    /// `pid` None: the event has no process (softirq, timers); a --pid filter then excludes it.
    pub fn matches(&self, local: (IpAddr, u16), remote: (IpAddr, u16), pid: Option<u32>) -> bool {
        self.port.is_none_or(|p| local.1 == p || remote.1 == p)
            && self
                .addr
                .is_none_or(|c| c.contains(local.0) || c.contains(remote.0))
            && self.pid.is_none_or(|p| pid == Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_filter() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("banana").is_err());
        let f = EndpointFilter {
            port: Some(80),
            addr: Some(Cidr::parse("10.0.0.2").unwrap()),
            pid: None,
        };
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(f.matches((a, 5000), (b, 80), None));
        assert!(!f.matches((a, 5000), (b, 81), None));
        let p = EndpointFilter {
            pid: Some(7),
            ..EndpointFilter::default()
        };
        assert!(p.matches((a, 1), (b, 2), Some(7)));
        assert!(!p.matches((a, 1), (b, 2), None));
    }
}
