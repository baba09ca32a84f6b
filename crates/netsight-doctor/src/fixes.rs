//! A fix never recommends what is already in place: a `sysctl -w KEY=VALUE` whose
//! every KEY already holds VALUE is replaced by a note saying so.

use std::collections::BTreeMap;

use netsight_report::Finding;

/// One `sysctl -w` command in a fix line: its byte span and its assignments.
struct SysctlCommand {
    span: std::ops::Range<usize>,
    assignments: Vec<(String, String)>,
}

fn commands(line: &str) -> Vec<SysctlCommand> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find("sysctl -w ") {
        let start = from + at;
        let mut pos = start + "sysctl -w ".len();
        let mut assignments = Vec::new();
        loop {
            let rest = &line[pos..];
            let key_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
                .unwrap_or(rest.len());
            if key_len == 0 || !rest[key_len..].starts_with('=') {
                break;
            }
            let key = &rest[..key_len];
            let value_at = key_len + 1;
            let (value, used) = if let Some(quoted) = rest[value_at..].strip_prefix('\'') {
                match quoted.find('\'') {
                    Some(end) => (quoted[..end].to_string(), value_at + end + 2),
                    None => break,
                }
            } else {
                let v = &rest[value_at..];
                let end = v
                    .find(|c: char| c.is_whitespace() || ",;)".contains(c))
                    .unwrap_or(v.len());
                (v[..end].to_string(), value_at + end)
            };
            if value.is_empty() {
                break;
            }
            assignments.push((key.to_string(), value));
            pos += used;
            // Further assignments of the same command follow after one space.
            match line[pos..].strip_prefix(' ') {
                Some(next)
                    if next.contains('=')
                        && next.split(' ').next().is_some_and(|t| t.contains('=')) =>
                {
                    pos += 1
                }
                _ => break,
            }
        }
        if !assignments.is_empty() {
            out.push(SysctlCommand {
                span: start..pos,
                assignments,
            });
        }
        from = pos.max(start + 1);
    }
    out
}

fn same(current: &str, wanted: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(current) == norm(wanted)
}

/// Rewrites the findings' fix lines against the current sysctl values. In a child
/// network namespace a host-wide key cannot be set here: the note says so.
pub fn drop_what_is_in_place(findings: &mut [Finding], sysctls: &BTreeMap<String, String>) {
    let child_netns =
        netsight_kernel::sysctl_tree::is_child_netns_view(|name| sysctls.contains_key(name));
    let host_wide = |k: &str| netsight_kernel::sysctl_tree::HOST_WIDE_SYSCTLS.contains(&k);
    for f in findings {
        for line in &mut f.fix {
            let mut rewritten = line.clone();
            // Right to left, so earlier spans stay valid.
            for cmd in commands(line).into_iter().rev() {
                let keys: Vec<&str> = cmd.assignments.iter().map(|(k, _)| k.as_str()).collect();
                let in_place = cmd
                    .assignments
                    .iter()
                    .all(|(k, v)| sysctls.get(k).is_some_and(|current| same(current, v)));
                let note = if child_netns && keys.iter().any(|k| host_wide(k)) {
                    let verb = if keys.len() > 1 { "are" } else { "is" };
                    format!(
                        "(on the host, not in this namespace: {} {verb} host-wide)",
                        keys.join(", ")
                    )
                } else if in_place {
                    let set: Vec<String> = cmd
                        .assignments
                        .iter()
                        .map(|(k, v)| format!("{k} is already {v}"))
                        .collect();
                    format!("({})", set.join(", "))
                } else {
                    continue;
                };
                rewritten.replace_range(cmd.span, &note);
            }
            *line = rewritten;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(fix: &[&str]) -> Finding {
        Finding {
            fix: fix.iter().map(|s| s.to_string()).collect(),
            ..crate::rules::test_support::bare_finding(
                "t",
                netsight_report::Layer::Tcp,
                netsight_report::Severity::Warning,
            )
        }
    }

    #[test]
    fn settings_in_place_are_not_recommended() {
        let sysctls: BTreeMap<String, String> = [
            ("net.core.somaxconn", "4096"),
            ("net.ipv4.tcp_congestion_control", "bbr"),
            ("net.ipv4.ip_local_port_range", "1024\t65535"),
            ("net.ipv4.tcp_keepalive_time", "7200"),
            ("net.core.netdev_max_backlog", "1000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut f = [finding(&[
            "Raise the backlog: the application's listen() argument and sysctl -w net.core.somaxconn=4096",
            "For lossy long paths consider BBR: sysctl -w net.ipv4.tcp_congestion_control=bbr",
            "Widen the port range: sysctl -w net.ipv4.ip_local_port_range='1024 65535'",
            "sysctl -w net.ipv4.tcp_keepalive_time=600 net.core.somaxconn=4096 (applies to sockets with SO_KEEPALIVE)",
            "sysctl -w net.core.somaxconn=8192, and a listen() backlog to match",
        ])];
        drop_what_is_in_place(&mut f, &sysctls);
        let mut in_namespace = [finding(&[
            "Raise: sysctl -w net.core.rmem_max=26214400 net.core.rmem_default=1048576",
        ])];
        let mut ns_sysctls = sysctls.clone();
        ns_sysctls.remove("net.core.netdev_max_backlog");
        drop_what_is_in_place(&mut in_namespace, &ns_sysctls);
        assert_eq!(
            in_namespace[0].fix,
            ["Raise: (on the host, not in this namespace: net.core.rmem_max, net.core.rmem_default are host-wide)"]
        );
        assert_eq!(
            f[0].fix,
            [
                "Raise the backlog: the application's listen() argument and (net.core.somaxconn is already 4096)",
                "For lossy long paths consider BBR: (net.ipv4.tcp_congestion_control is already bbr)",
                "Widen the port range: (net.ipv4.ip_local_port_range is already 1024 65535)",
                "sysctl -w net.ipv4.tcp_keepalive_time=600 net.core.somaxconn=4096 (applies to sockets with SO_KEEPALIVE)",
                "sysctl -w net.core.somaxconn=8192, and a listen() backlog to match",
            ]
        );
    }
}
