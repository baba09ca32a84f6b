//! Who is on the other end of this login: the SSH peer, which `netsight xdp`
//! must never cut off. sudo drops SSH_CONNECTION from the environment, so the
//! parents' environments are read too (the first that has it).

use std::net::IpAddr;

/// Parents looked at before giving up (sudo, a shell or two, tmux, sshd's child).
const MAX_PARENTS: usize = 16;

/// The address in SSH_CONNECTION ("client port server port") or SSH_CLIENT.
fn peer_of(vars: impl Iterator<Item = (String, String)>) -> Option<IpAddr> {
    let mut client = None;
    for (k, v) in vars {
        if k == "SSH_CONNECTION" {
            return v.split_whitespace().next()?.parse().ok();
        }
        if k == "SSH_CLIENT" {
            client = v.split_whitespace().next().and_then(|a| a.parse().ok());
        }
    }
    client
}

fn environ_of(pid: u32) -> Option<Vec<(String, String)>> {
    let bytes = std::fs::read(format!("{}/{pid}/environ", crate::PROC_ROOT)).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let s = std::str::from_utf8(kv).ok()?;
                let (k, v) = s.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("{}/{pid}/status", crate::PROC_ROOT)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The SSH client address of this session, if it came over SSH.
pub fn ssh_peer() -> Option<IpAddr> {
    if let Some(a) = peer_of(std::env::vars()) {
        return Some(a);
    }
    let mut pid = parent_of(std::process::id())?;
    for _ in 0..MAX_PARENTS {
        if pid <= 1 {
            return None;
        }
        if let Some(a) = environ_of(pid).and_then(|vars| peer_of(vars.into_iter())) {
            return Some(a);
        }
        pid = parent_of(pid)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_first_word() {
        let vars = |k: &str, v: &str| vec![(k.to_string(), v.to_string())].into_iter();
        assert_eq!(
            peer_of(vars("SSH_CONNECTION", "192.0.2.7 51000 10.0.0.1 22")),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            peer_of(vars("SSH_CLIENT", "2001:db8::5 51000 22")),
            Some("2001:db8::5".parse().unwrap())
        );
        assert_eq!(peer_of(vars("SSH_CONNECTION", "garbage")), None);
        assert_eq!(peer_of(vars("HOME", "/root")), None);
    }
}
