//! Names of a kernel enum read from the kernel's BTF, so drop
//! reasons are named as this kernel names them, with no table of our own.

use std::collections::BTreeMap;

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_ENUM: u32 = 6;
const KIND_ENUM64: u32 = 19;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes of kind-specific data after each 12-byte btf_type (linux/btf.h).
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 => 4,                    // INT
        3 => 12,                   // ARRAY
        4 | 5 => vlen * 12,        // STRUCT, UNION
        6 => vlen * 8,             // ENUM
        13 => vlen * 8,            // FUNC_PROTO
        14 => 4,                   // VAR
        15 => vlen * 12,           // DATASEC
        17 => 4,                   // DECL_TAG
        19 => vlen * 12,           // ENUM64
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        _ => return None,
    })
}

/// value → name of enum `name` in a BTF blob (little-endian, as on x86).
pub fn enum_values(btf: &[u8], name: &str) -> Result<BTreeMap<u64, String>, String> {
    if btf.len() < 24 || u16::from_le_bytes([btf[0], btf[1]]) != BTF_MAGIC {
        return Err("not a little-endian BTF blob".into());
    }
    let hdr_len = u32_at(btf, 4).ok_or("short header")? as usize;
    let (type_off, type_len) = (
        u32_at(btf, 8).ok_or("short header")? as usize,
        u32_at(btf, 12).ok_or("short header")? as usize,
    );
    let (str_off, str_len) = (
        u32_at(btf, 16).ok_or("short header")? as usize,
        u32_at(btf, 20).ok_or("short header")? as usize,
    );
    let types = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or("type section out of bounds")?;
    let strings = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or("string section out of bounds")?;
    let string = |off: u32| -> &str {
        let s = strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    };
    let mut at = 0;
    while at + 12 <= types.len() {
        let name_off = u32_at(types, at).ok_or("truncated type")?;
        let info = u32_at(types, at + 4).ok_or("truncated type")?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let extra = extra_len(kind, vlen).ok_or_else(|| format!("unknown BTF kind {kind}"))?;
        if (kind == KIND_ENUM || kind == KIND_ENUM64) && string(name_off) == name {
            let step = if kind == KIND_ENUM { 8 } else { 12 };
            let mut values = BTreeMap::new();
            for i in 0..vlen {
                let e = at + 12 + i * step;
                let n = u32_at(types, e).ok_or("truncated enum")?;
                let lo = u32_at(types, e + 4).ok_or("truncated enum")?;
                let hi = if kind == KIND_ENUM64 {
                    u32_at(types, e + 8).ok_or("truncated enum")?
                } else {
                    0
                };
                values.insert(u64::from(hi) << 32 | u64::from(lo), string(n).to_string());
            }
            return Ok(values);
        }
        at += 12 + extra;
    }
    Err(format!("enum {name} not found in BTF"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built BTF blob: one INT, then enum colour { RED = 1, BLUE = 7 }.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0colour\0RED\0BLUE\0";
        let mut types = Vec::new();
        let mut push = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        push(1);
        push(1 << 24);
        push(4);
        push(0x20); // int, 32 bits
        push(5);
        push(KIND_ENUM << 24 | 2);
        push(4); // enum colour, 2 values
        push(12);
        push(1);
        push(16);
        push(7);
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(&types);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn finds_enum_values() {
        let v = enum_values(&blob(), "colour").unwrap();
        assert_eq!(v[&1], "RED");
        assert_eq!(v[&7], "BLUE");
        assert!(enum_values(&blob(), "shape").is_err());
        assert!(enum_values(b"junk", "colour").is_err());
        let mut cut = blob();
        cut.truncate(40);
        assert!(enum_values(&cut, "colour").is_err());
    }

    #[test]
    fn this_kernel_names_its_drop_reasons() {
        let btf = match netsight_kernel::kernel_image::vmlinux_btf() {
            Ok(btf) => btf,
            Err(e) => return netsight_testkit::skip("this_kernel_names_its_drop_reasons", &e),
        };
        let reasons = enum_values(&btf, "skb_drop_reason").unwrap();
        assert!(reasons.values().any(|n| n == "SKB_DROP_REASON_NO_SOCKET"));
        assert!(reasons.len() > 50);
    }
}
