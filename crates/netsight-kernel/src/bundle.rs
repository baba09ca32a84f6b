//! Bundles: one gzip-compressed tar holding the raw inputs of one or more
//! snapshots, readable with `tar tzf`. Layout:
//!   meta.json                         {format_version, snapshots, created_by}
//!   snapshots/N/meta.json             RawMeta
//!   snapshots/N/missing.json          {key: reason}
//!   snapshots/N/<key>                 raw bytes (proc/net/snmp, netlink/route/link, ...)

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::raw::{RawMeta, RawSnapshot, FORMAT_VERSION};

/// Bounds what a hostile bundle can make us allocate or spend: one entry, all the
/// bytes kept in memory, the bytes walked through (skipped ones included: a
/// gzip bomb costs time even when nothing is kept) and the number of entries.
const MAX_ENTRY_BYTES: u64 = 64 << 20;
const MAX_KEPT_BYTES: u64 = 160 << 20;
const MAX_WALKED_BYTES: u64 = 1 << 30;
const MAX_ENTRIES: usize = 200_000;
const MAX_SNAPSHOTS: usize = 1024;

/// Raw keys netsight writes: anything else in a bundle is skipped unread.
const KNOWN_KEY_ROOTS: &[&str] = &[
    "proc/", "sys/", "netlink/", "ethtool/", "sockopt/", "derived/",
];

#[derive(Debug, Serialize, Deserialize)]
struct BundleMeta {
    format_version: u32,
    /// Absent in a streamed bundle: its snapshots are the complete ones it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshots: Option<usize>,
    created_by: String,
}

/// Writes a bundle one snapshot at a time: each snapshot's entries are followed
/// by its meta.json (what marks it complete) and a gzip sync flush, so a
/// recording cut short by a signal, a crash or a full disk is still readable up
/// to its last complete snapshot.
pub struct BundleWriter {
    path: std::path::PathBuf,
    builder: tar::Builder<GzEncoder<std::fs::File>>,
    written: usize,
}

impl std::fmt::Debug for BundleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish()
    }
}

impl BundleWriter {
    pub fn create(path: &Path) -> Result<BundleWriter> {
        // Never through a symlink: as root, a link planted in /tmp would aim the write elsewhere.
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| KernelError::Bundle {
                path: path.to_path_buf(),
                detail: if e.raw_os_error() == Some(libc::ELOOP) {
                    "is a symbolic link: refusing to write through it".into()
                } else {
                    format!("create: {e}")
                },
            })?;
        let mut writer = BundleWriter {
            path: path.to_path_buf(),
            builder: tar::Builder::new(GzEncoder::new(file, Compression::default())),
            written: 0,
        };
        let meta = BundleMeta {
            format_version: FORMAT_VERSION,
            snapshots: None,
            created_by: format!("netsight {}", env!("CARGO_PKG_VERSION")),
        };
        writer.add("meta.json", &to_json(&meta))?;
        writer.flush()?;
        Ok(writer)
    }

    fn err(&self, detail: String) -> KernelError {
        KernelError::Bundle {
            path: self.path.clone(),
            detail,
        }
    }

    fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let result = self.builder.append_data(&mut header, name, bytes);
        result.map_err(|e| self.err(format!("writing {name}: {e}")))
    }

    fn flush(&mut self) -> Result<()> {
        let result = self.builder.get_mut().flush();
        result.map_err(|e| self.err(format!("flushing: {e}")))
    }

    /// Appends one snapshot and flushes it to the file.
    pub fn append(&mut self, snap: &RawSnapshot) -> Result<()> {
        let i = self.written;
        self.add(
            &format!("snapshots/{i}/missing.json"),
            &to_json(&snap.missing),
        )?;
        for (key, bytes) in &snap.entries {
            self.add(&format!("snapshots/{i}/{key}"), bytes)?;
        }
        self.add(&format!("snapshots/{i}/meta.json"), &to_json(&snap.meta))?;
        self.flush()?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> usize {
        self.written
    }

    /// Ends the tar and gzip streams cleanly.
    pub fn finish(self) -> Result<()> {
        let path = self.path.clone();
        let err = |detail: String| KernelError::Bundle {
            path: path.clone(),
            detail,
        };
        let encoder = self
            .builder
            .into_inner()
            .map_err(|e| err(format!("finishing tar: {e}")))?;
        encoder
            .finish()
            .and_then(|f| f.sync_all())
            .map_err(|e| err(format!("finishing gzip: {e}")))
    }
}

pub fn write(path: &Path, snapshots: &[RawSnapshot]) -> Result<()> {
    let mut writer = BundleWriter::create(path)?;
    for snap in snapshots {
        writer.append(snap)?;
    }
    writer.finish()
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// What a bundle held: its complete snapshots and, when the file was cut short
/// after at least one of them, what was wrong with the rest.
#[derive(Debug)]
pub struct Bundle {
    pub snapshots: Vec<RawSnapshot>,
    pub truncated: Option<String>,
}

pub fn read(path: &Path) -> Result<Vec<RawSnapshot>> {
    read_bundle(path).map(|b| b.snapshots)
}

pub fn read_bundle(path: &Path) -> Result<Bundle> {
    let file = std::fs::File::open(path).map_err(|e| KernelError::Bundle {
        path: path.to_path_buf(),
        detail: format!("open: {e}"),
    })?;
    read_bundle_from(std::io::BufReader::new(file)).map_err(|detail| KernelError::Bundle {
        path: path.to_path_buf(),
        detail,
    })
}

/// Reads a bundle from any byte stream; errors are plain text for the caller to wrap.
pub fn read_from(reader: impl Read) -> std::result::Result<Vec<RawSnapshot>, String> {
    read_bundle_from(reader).map(|b| b.snapshots)
}

#[derive(Default)]
struct Parts {
    meta: Option<BundleMeta>,
    metas: BTreeMap<usize, RawMeta>,
    missing: BTreeMap<usize, BTreeMap<String, String>>,
    entries: BTreeMap<usize, BTreeMap<String, Vec<u8>>>,
}

/// Streams the archive: unknown members are skipped without being read, and the
/// bounds above end a hostile bundle with an error before memory runs out.
pub fn read_bundle_from(reader: impl Read) -> std::result::Result<Bundle, String> {
    let mut parts = Parts::default();
    let truncated = match walk(reader, &mut parts) {
        Ok(()) => None,
        Err(Walk::Refused(e)) => return Err(e),
        Err(Walk::Damaged(e)) => Some(e),
    };
    let meta = parts.meta.ok_or_else(|| match &truncated {
        Some(e) => format!("not a netsight bundle, or a corrupt one (gzip tar expected): {e}"),
        None => "no meta.json: not a netsight bundle".to_string(),
    })?;
    if meta.format_version > FORMAT_VERSION {
        return Err(format!(
            "bundle format {} is newer than this netsight understands ({FORMAT_VERSION}); upgrade netsight",
            meta.format_version
        ));
    }
    // Complete snapshots: 0, 1, ... each with its meta.json (written last).
    let complete = (0..).take_while(|i| parts.metas.contains_key(i)).count();
    let count = match meta.snapshots {
        Some(n) if n <= complete => n,
        Some(n) if truncated.is_none() => {
            return Err(format!("snapshot {complete} of {n} has no meta.json"))
        }
        _ => complete,
    };
    if count == 0 {
        if let Some(e) = truncated {
            return Err(format!("damaged before its first complete snapshot: {e}"));
        }
    }
    let snapshots = (0..count)
        .map_while(|i| {
            Some(RawSnapshot {
                meta: parts.metas.remove(&i)?,
                entries: parts.entries.remove(&i).unwrap_or_default(),
                missing: parts.missing.remove(&i).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Bundle {
        snapshots,
        truncated: truncated.map(|e| format!("the bundle is cut short after snapshot {count} ({e}); the complete snapshots before it are used")),
    })
}

enum Walk {
    /// Over a bound or malformed in a way that is not a cut-off tail.
    Refused(String),
    /// The stream broke (truncated gzip or tar): what came before may be used.
    Damaged(String),
}

fn walk(reader: impl Read, parts: &mut Parts) -> std::result::Result<(), Walk> {
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let iter = archive
        .entries()
        .map_err(|e| Walk::Refused(format!("not a netsight bundle (gzip tar expected): {e}")))?;
    let (mut kept, mut walked, mut count) = (0u64, 0u64, 0usize);
    for entry in iter {
        let mut entry = entry.map_err(|e| Walk::Damaged(e.to_string()))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(Walk::Refused(format!(
                "more than {MAX_ENTRIES} entries: not a bundle netsight wrote"
            )));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        walked = walked.saturating_add(size);
        if walked > MAX_WALKED_BYTES {
            return Err(Walk::Refused(format!(
                "more than {MAX_WALKED_BYTES} bytes uncompressed: not a bundle netsight wrote"
            )));
        }
        let name = entry
            .path()
            .map_err(|e| Walk::Refused(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let target = classify(&name).map_err(Walk::Refused)?;
        let Some(target) = target else {
            continue; // unknown members (newer versions, junk) are skipped unread
        };
        if size > MAX_ENTRY_BYTES {
            return Err(Walk::Refused(format!(
                "entry {name} is {size} bytes, over the {MAX_ENTRY_BYTES}-byte limit"
            )));
        }
        kept += size;
        if kept > MAX_KEPT_BYTES {
            return Err(Walk::Refused(format!(
                "more than {MAX_KEPT_BYTES} bytes of snapshot data: not a bundle netsight wrote (split long recordings)"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(|e| Walk::Damaged(format!("reading {name}: {e}")))?;
        if (bytes.len() as u64) < size {
            return Err(Walk::Damaged(format!("{name} is cut short")));
        }
        match target {
            Target::Meta => {
                parts.meta = Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| Walk::Refused(format!("meta.json: {e}")))?,
                )
            }
            Target::SnapshotMeta(i) => {
                let m = serde_json::from_slice(&bytes)
                    .map_err(|e| Walk::Refused(format!("{name}: {e}")))?;
                parts.metas.insert(i, m);
            }
            Target::Missing(i) => {
                let m = serde_json::from_slice(&bytes)
                    .map_err(|e| Walk::Refused(format!("{name}: {e}")))?;
                parts.missing.insert(i, m);
            }
            Target::Entry(i, key) => {
                parts.entries.entry(i).or_default().insert(key, bytes);
            }
        }
    }
    Ok(())
}

enum Target {
    Meta,
    SnapshotMeta(usize),
    Missing(usize),
    Entry(usize, String),
}

/// Where a member goes, None for members to skip.
fn classify(name: &str) -> std::result::Result<Option<Target>, String> {
    if name == "meta.json" {
        return Ok(Some(Target::Meta));
    }
    let Some(rest) = name.strip_prefix("snapshots/") else {
        return Ok(None);
    };
    let Some((index, key)) = rest.split_once('/') else {
        return Ok(None);
    };
    let index: usize = index
        .parse()
        .map_err(|_| format!("bad snapshot index in {name}"))?;
    if index >= MAX_SNAPSHOTS {
        return Err(format!("snapshot index {index} too large"));
    }
    Ok(match key {
        "meta.json" => Some(Target::SnapshotMeta(index)),
        "missing.json" => Some(Target::Missing(index)),
        _ if key.len() <= 512 && KNOWN_KEY_ROOTS.iter().any(|r| key.starts_with(r)) => {
            Some(Target::Entry(index, key.to_string()))
        }
        _ => None,
    })
}
