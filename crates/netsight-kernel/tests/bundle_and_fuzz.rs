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
