//! `netsight sockets`: filters, sorting and rendering of the socket table.

use std::io::Write;
use std::net::IpAddr;

use netsight_kernel::endpoint::Cidr;
use netsight_kernel::sockets::summary::SocketSummary;
use netsight_kernel::sockets::{Protocol, Socket, TcpState};

use crate::cli::{SocketSort, SocketsArgs};

/// The filters of one `sockets` run, parsed once.
#[derive(Debug)]
pub struct SocketFilter {
    states: Vec<TcpState>,
    port: Option<u16>,
    peer: Option<Cidr>,
    process: Option<String>,
    protocol: Option<Protocol>,
}

impl SocketFilter {
    pub fn from_args(args: &SocketsArgs) -> Result<SocketFilter, String> {
        let mut states = args
            .state
            .iter()
            .map(|s| {
                TcpState::parse(s).ok_or_else(|| {
                    format!("--state {s:?}: unknown; use estab, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, unconn, close-wait, last-ack, listen, closing")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if args.listening {
            states.push(TcpState::Listen);
        }
        if states.contains(&TcpState::SynRecv) {
            states.push(TcpState::NewSynRecv);
        }
        Ok(SocketFilter {
            states,
            port: args.port,
            peer: args
                .peer
                .as_deref()
                .map(|p| Cidr::parse(p).map_err(|e| format!("--peer {e}")))
                .transpose()?,
            process: args.process.clone(),
            protocol: match (args.tcp, args.udp) {
                (true, _) => Some(Protocol::Tcp),
                (_, true) => Some(Protocol::Udp),
                _ => None,
            },
        })
    }

    pub fn matches(&self, s: &Socket) -> bool {
        (self.states.is_empty() || self.states.contains(&s.state))
            && self
                .port
                .is_none_or(|p| s.local_port == p || s.remote_port == p)
            && self.peer.is_none_or(|c| c.contains(s.remote_addr))
            && self.protocol.is_none_or(|p| s.protocol == p)
            && self.process.as_deref().is_none_or(|want| {
                s.process.as_ref().is_some_and(|p| {
                    want.parse::<u32>().map(|pid| pid == p.pid).unwrap_or(false) || &*p.comm == want
                })
            })
    }
}

pub fn sort(sockets: &mut [&Socket], by: SocketSort) {
    let key = |s: &Socket| -> u64 {
        let t = s.tcp_info.as_ref();
        match by {
            SocketSort::Rtt => t.map_or(0, |t| u64::from(t.rtt_us)),
            SocketSort::Retrans => t.map_or(0, |t| u64::from(t.total_retrans)),
            SocketSort::Bytes => t.map_or(0, |t| t.bytes_acked.saturating_add(t.bytes_received)),
            SocketSort::Queue => u64::from(s.recv_q) + u64::from(s.send_q),
        }
    };
    sockets.sort_by_key(|s| std::cmp::Reverse(key(s)));
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    Endpoint(addr, port).to_string()
}

pub fn write_table(out: &mut impl Write, sockets: &[&Socket]) -> std::io::Result<()> {
    use std::fmt::Write as _;
    writeln!(
        out,
        "{:<5} {:<10} {:>7} {:>7} {:<27} {:<27} {:>8} {:>6} {:>6} {:>10} {:>6} {:>12}  PROCESS",
        "PROTO",
        "STATE",
        "RECV-Q",
        "SEND-Q",
        "LOCAL",
        "PEER",
        "RTT-MS",
        "CWND",
        "RETR",
        "DELIV-MBPS",
        "LIMIT",
        "MEM-R/W"
    )?;
    // One reused line buffer and hand-made padding: at tens of thousands of rows,
    // per-cell allocations and the formatter's char-by-char fill show up.
    let mut line = String::with_capacity(256);
    for s in sockets {
        line.clear();
        let proto = match (s.protocol, s.ip_version) {
            (Protocol::Tcp, 4) => "tcp",
            (Protocol::Tcp, _) => "tcp6",
            (Protocol::Udp, 4) => "udp",
            (Protocol::Udp, _) => "udp6",
        };
        cell(&mut line, 5, Align::Left, proto);
        cell(&mut line, 10, Align::Left, s.state.as_str());
        cell(&mut line, 7, Align::Right, s.recv_q);
        cell(&mut line, 7, Align::Right, s.send_q);
        cell(
            &mut line,
            27,
            Align::Left,
            Endpoint(s.local_addr, s.local_port),
        );
        cell(
            &mut line,
            27,
            Align::Left,
            Endpoint(s.remote_addr, s.remote_port),
        );
        match &s.tcp_info {
            Some(t) if s.state != TcpState::Listen && s.state != TcpState::TimeWait => {
                // rtt µs -> ms with 2 decimals; bytes/s -> Mbit/s with 1 decimal.
                cell(
                    &mut line,
                    8,
                    Align::Right,
                    Fixed((u64::from(t.rtt_us) + 5) / 10, 2),
                );
                cell(&mut line, 6, Align::Right, t.snd_cwnd);
                cell(&mut line, 6, Align::Right, t.total_retrans);
                let tenths = (t.delivery_rate_bytes_per_s.saturating_mul(8) + 50_000) / 100_000;
                cell(&mut line, 10, Align::Right, Fixed(tenths, 1));
            }
            _ => {
                for width in [8, 6, 6, 10] {
                    cell(&mut line, width, Align::Right, "-");
                }
            }
        }
        cell(&mut line, 6, Align::Right, s.limited_by().unwrap_or("-"));
        match s.skmem {
            Some(m) => cell(
                &mut line,
                12,
                Align::Right,
                MemPair(m.rmem_alloc, m.wmem_queued),
            ),
            None => cell(&mut line, 12, Align::Right, "-"),
        }
        line.push(' ');
        let _ = match &s.process {
            Some(p) => writeln!(line, "{}/{}", p.comm, p.pid),
            None => writeln!(line, "-"),
        };
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Writes `value` padded to `width` and a separating space.
fn cell(line: &mut String, width: usize, align: Align, value: impl std::fmt::Display) {
    use std::fmt::Write as _;
    const SPACES: &str = "                                ";
    let start = line.len();
    let _ = write!(line, "{value}");
    let pad = &SPACES[..width.saturating_sub(line.len() - start).min(SPACES.len())];
    match align {
        Align::Left => line.push_str(pad),
        Align::Right => line.insert_str(start, pad),
    }
    line.push(' ');
}

/// `ip:port`, IPv6 in brackets.
struct Endpoint(IpAddr, u16);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// A decimal number held as an integer count of 10^-decimals units (rounded by the caller).
struct Fixed(u64, u32);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = 10u64.pow(self.1);
        write!(
            f,
            "{}.{:0width$}",
            self.0 / scale,
            self.0 % scale,
            width = self.1 as usize
        )
    }
}

/// Receive-buffer memory / send-queue memory.
struct MemPair(u32, u32);

impl std::fmt::Display for MemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

pub fn write_summary(out: &mut impl Write, s: &SocketSummary) -> std::io::Result<()> {
    writeln!(out, "Sockets by state:")?;
    for (family, states) in &s.by_state {
        let total: u64 = states.values().sum();
        let parts: Vec<String> = states.iter().map(|(st, n)| format!("{st} {n}")).collect();
        writeln!(out, "  {family:<5} {total:>7}  ({})", parts.join(", "))?;
    }
    if !s.unix.is_empty() {
        let total: u64 = s.unix.values().sum();
        let parts: Vec<String> = s.unix.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(out, "  unix  {total:>7}  ({})", parts.join(", "))?;
    }
    let limit = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    writeln!(
        out,
        "\nTIME-WAIT: {} (net.ipv4.tcp_max_tw_buckets {})",
        limit(s.time_wait_total),
        limit(s.tcp_max_tw_buckets)
    )?;
    for p in &s.time_wait_by_peer {
        writeln!(out, "  {:>7}  {}", p.count, p.peer)?;
    }
    writeln!(
        out,
        "\nCLOSE-WAIT by process (the application has not closed what the peer closed):"
    )?;
    if s.close_wait_by_process.is_empty() {
        writeln!(out, "  none")?;
    }
    for p in &s.close_wait_by_process {
        let who = match (&p.comm, p.pid) {
            (Some(c), Some(pid)) => format!("{c}/{pid}"),
            _ => "unknown owner".into(),
        };
        writeln!(out, "  {:>7}  {who}", p.count)?;
    }
    writeln!(
        out,
        "\nListeners (accept queue vs backlog; SYN-RECV vs net.ipv4.tcp_max_syn_backlog {}):",
        limit(s.tcp_max_syn_backlog)
    )?;
    for l in &s.listeners {
        let who = match (&l.comm, l.pid) {
            (Some(c), Some(pid)) => format!("{c}/{pid}"),
            _ => "-".into(),
        };
        writeln!(
            out,
            "  {:<27} accept {:>5}/{:<5} {:>5.0}%  syn-recv {:>5}  {who}",
            endpoint(l.local_addr, l.local_port),
            l.accept_queue,
            l.backlog,
            l.fill_percent,
            l.syn_recv
        )?;
    }
    writeln!(
        out,
        "\nOrphans: {} (net.ipv4.tcp_max_orphans {})",
        limit(s.orphans),
        limit(s.tcp_max_orphans)
    )?;
    let mem = match (s.tcp_mem_pages, s.tcp_mem_limits_pages) {
        (Some(m), Some([min, pressure, max])) => {
            format!("{m} pages (net.ipv4.tcp_mem min {min}, pressure {pressure}, max {max})")
        }
        (Some(m), None) => format!("{m} pages"),
        _ => "?".into(),
    };
    writeln!(out, "TCP memory: {mem}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
    }

    #[test]
    fn cells_pad_and_fixed_point_rounds() {
        let mut line = String::new();
        cell(&mut line, 6, Align::Right, Fixed((12_345 + 5) / 10, 2));
        cell(&mut line, 5, Align::Left, "tcp");
        cell(&mut line, 4, Align::Right, Fixed(7, 1));
        cell(&mut line, 2, Align::Left, "toolong");
        assert_eq!(line, " 12.35 tcp    0.7 toolong ");
        let v6 = Endpoint("::1".parse().unwrap(), 443).to_string();
        assert_eq!(v6, "[::1]:443");
    }
}
