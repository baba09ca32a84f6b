//! Cost of one snapshot: parse cost per source (recorded 6.18 fixtures), the
//! whole parse of a live raw snapshot, and a full live collection + parse.
//! Target (issue 2): a full snapshot < 5 ms of CPU on this host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use netsight_kernel::procfs::{conntrack, netdev, snmp, sockstat, softnet};
use netsight_kernel::{LiveSource, Snapshot};

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc/debian12-6.18.44")
        .join(rel);
    std::fs::read_to_string(p).unwrap()
}

fn parsers(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let snmp_text = fixture("net/snmp");
    g.bench_function("snmp", |b| {
        b.iter(|| {
            let mut mib = snmp::Mib::new();
            snmp::parse_paired("snmp", black_box(&snmp_text), &mut mib).unwrap();
            mib
        })
    });
    let netstat_text = fixture("net/netstat");
    g.bench_function("netstat", |b| {
        b.iter(|| {
            let mut mib = snmp::Mib::new();
            snmp::parse_paired("netstat", black_box(&netstat_text), &mut mib).unwrap();
            mib
        })
    });
    let snmp6_text = fixture("net/snmp6");
    g.bench_function("snmp6", |b| {
        b.iter(|| {
            let mut mib = snmp::Mib::new();
            snmp::parse_snmp6(black_box(&snmp6_text), &mut mib).unwrap();
            mib
        })
    });
    let sockstat_text = fixture("net/sockstat");
    g.bench_function("sockstat", |b| {
        b.iter(|| {
            let mut s = sockstat::Sockstat::new();
            sockstat::parse("sockstat", black_box(&sockstat_text), &mut s).unwrap();
            s
        })
    });
    let dev_text = fixture("net/dev");
    g.bench_function("dev", |b| {
        b.iter(|| netdev::parse(black_box(&dev_text)).unwrap())
    });
    let softnet_text = fixture("net/softnet_stat");
    g.bench_function("softnet_stat", |b| {
        b.iter(|| softnet::parse(black_box(&softnet_text)).unwrap())
    });
    let ct_text = fixture("net/stat/nf_conntrack");
    g.bench_function("nf_conntrack_stat", |b| {
        b.iter(|| conntrack::parse_stats(black_box(&ct_text)).unwrap())
    });
    g.finish();
}

fn live(c: &mut Criterion) {
    let source = LiveSource::default();
    let raw = source.collect();
    let mut g = c.benchmark_group("live");
    g.bench_function("parse_all_sources", |b| {
        b.iter(|| Snapshot::from_raw(black_box(&raw)))
    });
    g.bench_function("collect_raw", |b| b.iter(|| source.collect()));
    g.bench_function("full_snapshot", |b| b.iter(Snapshot::take));
    g.finish();
}

criterion_group!(benches, parsers, live);
criterion_main!(benches);
