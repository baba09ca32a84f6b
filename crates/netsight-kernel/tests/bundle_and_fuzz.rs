//! Bundles round-trip exactly; hostile bytes to every parser of outside input
//! give errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use netsight_kernel::procfs::{conntrack, netdev, snmp, sockstat, softnet};
use netsight_kernel::{bundle, link, netlink_io, qdisc, LiveSource, RawSnapshot, Snapshot};
use proptest::prelude::*;

fn fixture_raw() -> RawSnapshot {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc/debian12-6.18.44");
    LiveSource::with_roots(&root, root.join("no-sys")).collect()
}

#[test]
fn bundle_round_trip_is_exact() {
    let dir = std::env::temp_dir().join(format!("netsight-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.nsb");
    let mut second = fixture_raw();
    second.meta.monotonic_ns += 1_000_000_000;
    second
        .entries
        .insert("netlink/route/link".into(), vec![0, 1, 2, 255]);
    let raws = vec![fixture_raw(), second];
    bundle::write(&path, &raws).unwrap();
    let back = bundle::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(back, raws);
    assert_eq!(Snapshot::from_raw(&back[0]), Snapshot::from_raw(&raws[0]));
}

#[test]
fn bad_bundles_give_clear_errors() {
    let err = bundle::read_from(&b"not a bundle at all"[..]).unwrap_err();
    assert!(err.contains("gzip") || err.contains("corrupt"), "{err}");
    let err = bundle::read(std::path::Path::new("/nonexistent/x.nsb")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.nsb"), "{err}");

    // A valid archive cut in half.
    let dir = std::env::temp_dir().join(format!("netsight-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.nsb");
    bundle::write(&path, &[fixture_raw()]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(bundle::read_from(&bytes[..bytes.len() / 2]).is_err());
}

/// A gzip tar of the given members, written with the tar crate (not our writer).
fn archive(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_bundle_cut_short_keeps_its_complete_snapshots() {
    let dir = std::env::temp_dir().join(format!("netsight-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.nsb");
    let mut writer = bundle::BundleWriter::create(&path).unwrap();
    let first = fixture_raw();
    writer.append(&first).unwrap();
    // After each append the file on disk already holds that snapshot (no finish yet).
    let after_one = std::fs::read(&path).unwrap();
    writer.append(&fixture_raw()).unwrap();
    let after_two_len = std::fs::read(&path).unwrap().len();
    std::mem::forget(writer); // as if killed: the tar and gzip streams never end
    let read = bundle::read_bundle(&path).unwrap();
    assert_eq!(read.snapshots.len(), 2);
    assert!(
        read.truncated.is_some(),
        "an unfinished stream must be reported"
    );
    let one = bundle::read_from(&after_one[..]).unwrap();
    assert_eq!(one, vec![first]);
    // Every cut keeps the snapshots completed before it, or says nothing was complete.
    let bytes = std::fs::read(&path).unwrap();
    for cut in (0..bytes.len()).step_by(97) {
        match bundle::read_from(&bytes[..cut]) {
            Ok(snaps) => assert!(cut >= after_one.len() - 64 && snaps.len() <= 2, "{cut}"),
            Err(e) => assert!(cut <= after_two_len, "{cut}: {e}"),
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_bundles_hit_their_bounds_with_clear_errors() {
    let meta = br#"{"format_version": 1, "created_by": "test"}"#.to_vec();
    let snap_meta =
        br#"{"format_version":1,"taken_at_unix_ms":1,"monotonic_ns":1,"netsight_version":"x"}"#
            .to_vec();
    // Unknown members are skipped (not kept), known ones count toward the bound.
    let big = vec![0u8; 8 << 20];
    let mut members: Vec<(&str, Vec<u8>)> = vec![("meta.json", meta.clone())];
    let names: Vec<String> = (0..30).map(|i| format!("junk/{i}")).collect();
    for n in &names {
        members.push((n, big.clone()));
    }
    members.push(("snapshots/0/meta.json", snap_meta.clone()));
    let snaps = bundle::read_from(&archive(&members)[..]).unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0].entries.is_empty(),
        "unknown members must not be kept"
    );

    let names: Vec<String> = (0..30).map(|i| format!("snapshots/0/proc/x{i}")).collect();
    let mut members: Vec<(&str, Vec<u8>)> = vec![("meta.json", meta.clone())];
    for n in &names {
        members.push((n, big.clone()));
    }
    let err = bundle::read_from(&archive(&members)[..]).unwrap_err();
    assert!(err.contains("bytes of snapshot data"), "{err}");

    let err = bundle::read_from(
        &archive(&[
            ("meta.json", meta.clone()),
            ("snapshots/5000/meta.json", snap_meta),
        ])[..],
    )
    .unwrap_err();
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn netlink_garbage_is_reported_not_read_as_empty() {
    let mut raw = fixture_raw();
    raw.entries.insert(
        "netlink/route/qdisc".into(),
        b"garbage, not netlink at all".to_vec(),
    );
    raw.entries
        .insert("netlink/route/link".into(), vec![0xff; 40]);
    let snap = Snapshot::from_raw(&raw);
    assert!(
        snap.unavailable.contains_key("netlink/route/qdisc"),
        "{:?}",
        snap.unavailable
    );
    assert!(
        snap.unavailable.contains_key("netlink/route/link"),
        "{:?}",
        snap.unavailable
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn text_parsers_never_panic(text in "[A-Za-z0-9:| \t\n-]{0,400}") {
        let mut mib = snmp::Mib::new();
        let _ = snmp::parse_paired("snmp", &text, &mut mib);
        let _ = snmp::parse_snmp6(&text, &mut mib);
        let _ = sockstat::parse("sockstat", &text, &mut Default::default());
        let _ = netdev::parse(&text);
        let _ = softnet::parse(&text);
        let _ = conntrack::parse_stats(&text);
        let _ = link::parse_speed(&text);
    }

    #[test]
    fn binary_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = netlink_io::data_messages(&bytes).count();
        let _ = link::parse_link_dump(&bytes);
        let _ = qdisc::parse_qdisc_dump(&bytes);
        for what in netsight_kernel::ethtool::EthtoolDump::ALL {
            let _ = netsight_kernel::ethtool::parse_dump(what, &bytes);
        }
        let _ = bundle::read_from(&bytes[..]);
    }

    #[test]
    fn netlink_message_with_random_body_never_panics(
        msg_type in 16u16..40, body in proptest::collection::vec(any::<u8>(), 0..300)
    ) {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&msg_type.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&body);
        let _ = link::parse_link_dump(&m);
        let _ = qdisc::parse_qdisc_dump(&m);
        for what in netsight_kernel::ethtool::EthtoolDump::ALL {
            let _ = netsight_kernel::ethtool::parse_dump(what, &m);
        }
    }

    #[test]
    fn snmp_round_trip(values in proptest::collection::vec(any::<u32>(), 1..40)) {
        let names: Vec<String> = (0..values.len()).map(|i| format!("C{i}")).collect();
        let text = format!("Tcp: {}\nTcp: {}\n", names.join(" "),
            values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "));
        let mut mib = snmp::Mib::new();
        snmp::parse_paired("snmp", &text, &mut mib).unwrap();
        for (n, v) in names.iter().zip(&values) {
            prop_assert_eq!(mib["Tcp"][n], i64::from(*v));
        }
    }
}
