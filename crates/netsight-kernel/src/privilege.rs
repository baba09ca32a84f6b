//! Giving up privilege once what needed it is open: a long-running reader keeps
//! only the capabilities its sources use, as an unprivileged user.

use std::ffi::CString;

/// A capability by number (linux/capability.h) and name.
pub type Capability = (u32, &'static str);

/// What a snapshot's sources use, and why.
pub const SAMPLING_CAPABILITIES: &[Capability] = &[
    // /proc/PID/fd of other users' processes (socket owners).
    (2, "CAP_DAC_READ_SEARCH"),
    // iptables-legacy counters (getsockopt), nftables rule dumps.
    (12, "CAP_NET_ADMIN"),
    // The raw socket iptables-legacy is asked through.
    (13, "CAP_NET_RAW"),
    // readlink of other users' /proc/PID/fd entries.
    (19, "CAP_SYS_PTRACE"),
    // The BPF socket iterator that finds owners in one pass.
    (38, "CAP_PERFMON"),
    (39, "CAP_BPF"),
];

/// The highest capability number this code knows of (CAP_CHECKPOINT_RESTORE).
const LAST_CAP: u32 = 40;

/// As root: drops every other capability from the bounding set, switches to
/// `user` (default "nobody"; "root" stays root with fewer capabilities) keeping
/// `SAMPLING_CAPABILITIES`, and sets no_new_privs. Not root: nothing to give up.
/// Returns what it did, for the log line.
pub fn keep_only_for_sampling(user: Option<&str>) -> Result<String, String> {
    keep_only(SAMPLING_CAPABILITIES, user)
}

#[allow(unsafe_code)]
pub fn keep_only(keep: &[Capability], user: Option<&str>) -> Result<String, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok("not root: running with this user's privileges".into());
    }
    let name = user.unwrap_or("nobody");
    let (uid, gid) = if name == "root" {
        (0, 0)
    } else {
        let c = CString::new(name).map_err(|_| format!("{name:?}: not a user name"))?;
        // SAFETY: getpwnam returns static storage or NULL; the ids are copied at once.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if pw.is_null() {
            return Err(format!("no user {name:?} on this host (pass --user)"));
        }
        // SAFETY: pw is non-null and points to a valid passwd entry.
        unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
    };
    let kept = |cap: u32| keep.iter().any(|(n, _)| *n == cap);
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: prctl and the credential calls take plain integers; the order matters:
    // the bounding set needs CAP_SETPCAP, so it goes before the user switch.
    unsafe {
        for cap in 0..=LAST_CAP {
            // EINVAL: this kernel has no such capability.
            if !kept(cap)
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
            {
                return Err(os("PR_CAPBSET_DROP"));
            }
        }
        if uid != 0 {
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                return Err(os("PR_SET_KEEPCAPS"));
            }
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(os("setgroups"));
            }
            if libc::setgid(gid) != 0 {
                return Err(os("setgid"));
            }
            if libc::setuid(uid) != 0 {
                return Err(os("setuid"));
            }
        }
    }
    let mask = keep.iter().fold(0u64, |m, (n, _)| m | 1 << n);
    set_capabilities(mask, mask).map_err(|e| format!("capset: {e}"))?;
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os("PR_SET_NO_NEW_PRIVS"));
    }
    let names: Vec<&str> = keep.iter().map(|(_, n)| *n).collect();
    Ok(format!("running as {name} with {}", names.join(", ")))
}

/// Sets the effective and permitted sets (capset v3); inheritable is cleared.
#[allow(unsafe_code)]
pub fn set_capabilities(effective: u64, permitted: u64) -> std::io::Result<()> {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let word = |mask: u64, i: u32| (mask >> (32 * i)) as u32;
    let data = [0, 1].map(|i| CapData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: 0,
    });
    // SAFETY: capset with a v3 header and two data words, as capset(2) defines.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// CAP_NET_ADMIN and CAP_BPF: what attaching an XDP program takes.
pub const XDP_CAPABILITIES: &[Capability] = &[(12, "CAP_NET_ADMIN"), (39, "CAP_BPF")];

/// The capabilities of `wanted` this process lacks in its effective set
/// (CapEff of /proc/self/status); empty when it has them all or cannot tell.
pub fn missing(wanted: &[Capability]) -> Vec<&'static str> {
    let Ok(status) = std::fs::read_to_string(format!("{}/self/status", crate::PROC_ROOT)) else {
        return Vec::new();
    };
    let Some(effective) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Vec::new();
    };
    wanted
        .iter()
        .filter(|(n, _)| effective & (1u64 << n) == 0)
        .map(|(_, name)| *name)
        .collect()
}
