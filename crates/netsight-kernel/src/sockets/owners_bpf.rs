//! Socket owners through a BPF task_file iterator (bpf/socket_owners.bpf.c):
//! one read for all processes. Needs CAP_BPF + CAP_PERFMON (or root) and kernel
//! BTF; callers fall back to the /proc/PID/fd scan when it is unavailable.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use aya::programs::Iter;
use aya::{include_bytes_aligned, EbpfLoader};

use super::ProcessRef;

static OBJECT: &[u8] = include_bytes_aligned!("../../bpf/socket_owners.bpf.o");

/// struct owner in the BPF program: tgid u32, fd u32, inode u64, comm [u8; 16].
const RECORD_LEN: usize = 32;

/// The iterator program, loaded (verified, relocated) once per process and run
/// on every scan: loading is most of a scan's cost, and a live view (top, serve,
/// record) scans every refresh. Only a run's link and file are per scan; the
/// loaded program goes when the process does.
static LOADED: std::sync::Mutex<Option<aya::Ebpf>> = std::sync::Mutex::new(None);

fn load() -> Result<aya::Ebpf, String> {
    // One parse of the kernel BTF per process serves relocation and attach, here
    // and in the tracers.
    let btf = &crate::kernel_image::kernel_btf()?.parsed;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(btf))
        .load(OBJECT)
        .map_err(|e| format!("loading the BPF object: {e}"))?;
    let program: &mut Iter = ebpf
        .program_mut("socket_owners")
        .ok_or("BPF object has no socket_owners program")?
        .try_into()
        .map_err(|e| format!("socket_owners is not an iterator: {e}"))?;
    program
        .load("task_file", btf)
        .map_err(|e| format!("loading the iterator (needs CAP_BPF and CAP_PERFMON): {e}"))?;
    Ok(ebpf)
}

/// The iterator's raw records (see `parse_records`), or why it could not run.
pub fn scan() -> Result<Vec<u8>, String> {
    let mut loaded = LOADED
        .lock()
        .map_err(|_| "the iterator's lock is poisoned")?;
    if loaded.is_none() {
        *loaded = Some(load()?);
    }
    let ebpf = loaded.as_mut().ok_or("the iterator is not loaded")?;
    let program: &mut Iter = ebpf
        .program_mut("socket_owners")
        .ok_or("BPF object has no socket_owners program")?
        .try_into()
        .map_err(|e| format!("socket_owners is not an iterator: {e}"))?;
    let link_id = program
        .attach()
        .map_err(|e| format!("attaching the iterator: {e}"))?;
    let link = program
        .take_link(link_id)
        .map_err(|e| format!("iterator link: {e}"))?;
    let mut file = link
        .into_file()
        .map_err(|e| format!("creating the iterator: {e}"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("reading the iterator: {e}"))?;
    // Dropping `file` ends this run's link: nothing stays attached.
    Ok(bytes)
}

/// Encodes one owner in the iterator's record layout (the /proc scan uses it too,
/// so bundles hold one format whichever way owners were found).
pub fn push_record(out: &mut Vec<u8>, pid: u32, inode: u32, comm: &str) {
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&u64::from(inode).to_ne_bytes());
    let mut c = [0u8; 16];
    let n = comm.len().min(15);
    c[..n].copy_from_slice(&comm.as_bytes()[..n]);
    out.extend_from_slice(&c);
}

/// Decodes iterator output; a trailing partial record is ignored.
pub fn parse_records(bytes: &[u8]) -> HashMap<u32, ProcessRef> {
    let mut comms: HashMap<[u8; 16], Arc<str>> = HashMap::new();
    let mut owners = HashMap::new();
    for r in bytes.chunks_exact(RECORD_LEN) {
        let pid = u32::from_ne_bytes([r[0], r[1], r[2], r[3]]);
        let inode = u64::from_ne_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]);
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&r[16..32]);
        let comm = comms
            .entry(raw)
            .or_insert_with(|| {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(16);
                String::from_utf8_lossy(&raw[..end]).into()
            })
            .clone();
        // sock_diag reports inodes as u32; socket inode numbers fit.
        owners
            .entry(inode as u32)
            .or_insert(ProcessRef { pid, comm });
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_parse_round_trip() {
        let mut bytes = Vec::new();
        push_record(&mut bytes, 7, 99, "a-rather-long-command-name");
        let owners = parse_records(&bytes);
        assert_eq!(owners[&99].pid, 7);
        assert_eq!(
            &*owners[&99].comm, "a-rather-long-c",
            "comm is 15 bytes, as the kernel keeps it"
        );
    }

    #[test]
    fn records_decode() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&42u32.to_ne_bytes());
        rec.extend_from_slice(&3u32.to_ne_bytes());
        rec.extend_from_slice(&123_456u64.to_ne_bytes());
        let mut comm = [0u8; 16];
        comm[..5].copy_from_slice(b"nginx");
        rec.extend_from_slice(&comm);
        rec.extend_from_slice(&[1, 2, 3]); // partial tail
        let owners = parse_records(&rec);
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[&123_456].pid, 42);
        assert_eq!(&*owners[&123_456].comm, "nginx");
    }
}
