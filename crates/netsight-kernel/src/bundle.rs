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

/// Bounds what a hostile bundle can make us allocate.
const MAX_ENTRY_BYTES: u64 = 64 << 20;
const MAX_SNAPSHOTS: usize = 1024;

#[derive(Debug, Serialize, Deserialize)]
struct BundleMeta {
    format_version: u32,
    snapshots: usize,
    created_by: String,
}

pub fn write(path: &Path, snapshots: &[RawSnapshot]) -> Result<()> {
    let err = |detail: String| KernelError::Bundle {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::create(path).map_err(|e| err(format!("create: {e}")))?;
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let mut add = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes)
            .map_err(|e| err(format!("writing {name}: {e}")))
    };
    let meta = BundleMeta {
        format_version: FORMAT_VERSION,
        snapshots: snapshots.len(),
        created_by: format!("netsight {}", env!("CARGO_PKG_VERSION")),
    };
    add("meta.json", &to_json(&meta))?;
    for (i, snap) in snapshots.iter().enumerate() {
        add(&format!("snapshots/{i}/meta.json"), &to_json(&snap.meta))?;
        add(
            &format!("snapshots/{i}/missing.json"),
            &to_json(&snap.missing),
        )?;
        for (key, bytes) in &snap.entries {
            add(&format!("snapshots/{i}/{key}"), bytes)?;
        }
    }
    let encoder = builder
        .into_inner()
        .map_err(|e| err(format!("finishing tar: {e}")))?;
    encoder
        .finish()
        .and_then(|mut f| f.flush())
        .map_err(|e| err(format!("finishing gzip: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

pub fn read(path: &Path) -> Result<Vec<RawSnapshot>> {
    let file = std::fs::File::open(path).map_err(|e| KernelError::Bundle {
        path: path.to_path_buf(),
        detail: format!("open: {e}"),
    })?;
    read_from(file).map_err(|detail| KernelError::Bundle {
        path: path.to_path_buf(),
        detail,
    })
}

/// Reads a bundle from any byte stream; errors are plain text for the caller to wrap.
pub fn read_from(reader: impl Read) -> std::result::Result<Vec<RawSnapshot>, String> {
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut meta: Option<BundleMeta> = None;
    let mut metas: BTreeMap<usize, RawMeta> = BTreeMap::new();
    let mut missing: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    let mut entries: BTreeMap<usize, BTreeMap<String, Vec<u8>>> = BTreeMap::new();

    let iter = archive
        .entries()
        .map_err(|e| format!("not a netsight bundle (gzip tar expected): {e}"))?;
    for entry in iter {
        let mut entry = entry.map_err(|e| {
            format!("not a netsight bundle, or a corrupt one (gzip tar expected): {e}")
        })?;
        let name = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .to_string_lossy()
            .into_owned();
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_ENTRY_BYTES {
            return Err(format!("entry {name} is {size} bytes, over the limit"));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading {name}: {e}"))?;
        if name == "meta.json" {
            meta = Some(serde_json::from_slice(&bytes).map_err(|e| format!("meta.json: {e}"))?);
            continue;
        }
        let Some(rest) = name.strip_prefix("snapshots/") else {
            continue; // unknown top-level entries from newer versions are ignored
        };
        let (index, key) = rest
            .split_once('/')
            .ok_or_else(|| format!("bad entry name {name}"))?;
        let index: usize = index
            .parse()
            .map_err(|_| format!("bad snapshot index in {name}"))?;
        if index >= MAX_SNAPSHOTS {
            return Err(format!("snapshot index {index} too large"));
        }
        match key {
            "meta.json" => {
                let m = serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
                metas.insert(index, m);
            }
            "missing.json" => {
                let m = serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
                missing.insert(index, m);
            }
            _ => {
                entries
                    .entry(index)
                    .or_default()
                    .insert(key.to_string(), bytes);
            }
        }
    }

    let meta = meta.ok_or("no meta.json: not a netsight bundle")?;
    if meta.format_version > FORMAT_VERSION {
        return Err(format!(
            "bundle format {} is newer than this netsight understands ({FORMAT_VERSION}); upgrade netsight",
            meta.format_version
        ));
    }
    (0..meta.snapshots)
        .map(|i| {
            Ok(RawSnapshot {
                meta: metas
                    .remove(&i)
                    .ok_or_else(|| format!("snapshot {i} has no meta.json"))?,
                entries: entries.remove(&i).unwrap_or_default(),
                missing: missing.remove(&i).unwrap_or_default(),
            })
        })
        .collect()
}
