//! `netsight serve` against real clients: promtool lints what it exports, a raw
//! socket sends it hostile requests, and a real Prometheus server scrapes it and
//! fires the generated alert for a fault injected in a namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{netsight, privileged, ConnHolder, NetnsPair};

/// A running `netsight serve`, killed on drop; `addr` is where it listens.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// Its "listening on" line (scheme, privileges kept).
    banner: String,
}

impl Serve {
    /// Starts serve (inside `ns` if given) on port 0 and returns once it says
    /// where it listens, which it does after its first sample.
    fn start(pair: Option<(&NetnsPair, &str)>, args: &[&str]) -> Serve {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = match pair {
            Some((pair, ns)) => pair.spawn(ns, netsight(), &all),
            None => Command::new(netsight())
                .args(&all)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("netsight serve"),
        };
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("serve exited before listening");
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                let rest = rest.split_once("://").unwrap().1;
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        let banner = line.clone();
        // Keep draining stderr so serve never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Serve {
            child,
            addr,
            banner,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, headers, body).
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    response(&raw)
}

/// An HTTP response as (status, headers, body); status 0 when there is none.
fn response(raw: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String, String) {
    http(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

/// A GET from inside namespace `ns` (where a serve started there listens): curl -i.
fn get_in(
    pair: &NetnsPair,
    ns: &str,
    addr: SocketAddr,
    path: &str,
    accept: &str,
) -> (u16, String, String) {
    let url = format!("http://{addr}{path}");
    let out = pair.exec(
        ns,
        "curl",
        &[
            "-s",
            "-i",
            "--max-time",
            "10",
            "-H",
            &format!("Accept: {accept}"),
            &url,
        ],
    );
    response(&out.stdout)
}

/// The rule file serve generates, with these `for:` and evaluation interval.
fn alert_rules(for_: &str, interval: &str) -> String {
    support::run(
        netsight(),
        &[
            "serve",
            "--print-alert-rules",
            "--alert-for",
            for_,
            "--alert-interval",
            interval,
        ],
    )
}

/// The value of a series with no labels in Prometheus text.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn metrics_pass_promtool_and_agree_with_nstat() {
    if !privileged(
        "metrics_pass_promtool_and_agree_with_nstat",
        &["ip", "promtool", "nstat", "ping", "curl"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let serve = Serve::start(Some((&pair, &pair.a)), &["--interval", "1s"]);
    // Traffic the counters must show: 20 pings across the pair.
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-c", "20", "-i", "0.01", "-q", &pair.addr_b],
    );
    let nstat_before = pair.exec_ok(&pair.a, "nstat", &["-az", "--json", "IcmpOutEchos"]);
    // Wait for a sample taken after the pings (the sample counter moves twice).
    let samples = |t: &str| value(t, "netsight_samples_total").unwrap_or(0.0);
    let first = samples(&get_in(&pair, &pair.a, serve.addr, "/metrics", "text/plain").2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (_, _, body) = get_in(&pair, &pair.a, serve.addr, "/metrics", "text/plain");
        if samples(&body) >= first + 2.0 || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let nstat: Value = serde_json::from_str(&nstat_before).unwrap();
    let oracle = nstat["kernel"]["IcmpOutEchos"].as_f64().unwrap();
    assert!(oracle >= 20.0, "{nstat}");
    assert_eq!(
        value(&text, "netsight_icmp_out_echos_total"),
        Some(oracle),
        "the pings, as nstat counts them"
    );
    for series in [
        "netsight_link_rx_bytes_total{interface=\"va\"}",
        "netsight_tcp_ext_listen_overflows_total",
        "netsight_softnet_processed_total{cpu=\"0\"}",
        "netsight_sample_window_seconds",
        "netsight_sample_age_seconds",
        "netsight_source_duration_seconds{source=\"snapshot\"}",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Prometheus asks for OpenMetrics and gets it, ending in # EOF.
    let (status, head, om) = get_in(
        &pair,
        &pair.a,
        serve.addr,
        "/metrics",
        "application/openmetrics-text;version=1.0.0",
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("application/openmetrics-text"),
        "{head}"
    );
    assert!(om.trim_end().ends_with("# EOF"));
    // Every series the dashboard and the alert rules use is exported (sources an
    // empty namespace lacks, qdisc stats, conntrack and listeners, aside).
    let dashboard = support::run(netsight(), &["serve", "--print-dashboard"]);
    let rules = support::run(netsight(), &["serve", "--print-alert-rules"]);
    let used = format!("{dashboard}{rules}");
    let mut missing = Vec::new();
    for name in used.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let absent_here = [
            "netsight_qdisc_",
            "netsight_conntrack_",
            "netsight_listener_",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        if name.starts_with("netsight_") && !absent_here && !text.contains(&format!("\n{name}")) {
            missing.push(name.to_string());
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "used but not exported: {missing:?}");
    let (status, _, findings) = get_in(&pair, &pair.a, serve.addr, "/findings", "*/*");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&findings).unwrap();
    assert!(
        report["findings"].is_array() && report["rules_run"].as_u64() > Some(30),
        "{report}"
    );
}

#[test]
fn hostile_requests_get_an_error_and_a_closed_connection() {
    let serve = Serve::start(
        None,
        &[
            "--interval",
            "1s",
            "--max-connections",
            "2",
            "--exclude",
            "sockets",
        ],
    );
    let a = serve.addr;
    assert_eq!(http(a, b"GARBAGE\r\n\r\n").0, 400);
    assert_eq!(
        http(
            a,
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(get(a, "/nope", "*/*").0, 404);
    assert_eq!(get(a, "/-/healthy", "*/*").0, 200);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(http(a, huge.as_bytes()).0, 431);
    // Silent clients hold both connection slots; they are cut after the header
    // timeout (5 s) and a scrape then gets through.
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(a).unwrap()).collect();
    for s in &mut silent {
        s.write_all(b"GET /metr").unwrap();
    }
    let (status, _, body) = get(a, "/metrics", "text/plain");
    assert_eq!(status, 200);
    assert!(body.contains("netsight_samples_total"));
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        // Closed by serve: read ends (an error status or EOF), it does not hang.
        let _ = s.read_to_end(&mut buf);
    }
    assert!(started.elapsed() < Duration::from_secs(25));
    // Binding beyond loopback must be asked for.
    let out = support::output(netsight(), &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = support::output(netsight(), &["serve", "--exclude", "everything"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn generated_alert_rules_pass_promtool_unit_tests() {
    if !support::have("promtool") {
        return support::skip(
            "generated_alert_rules_pass_promtool_unit_tests",
            "needs promtool (scripts/setup installs prometheus)",
        );
    }
    let dir = std::env::temp_dir().join(format!("netsight-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = alert_rules("1m", "30s");
    std::fs::write(dir.join("netsight-alerts.yml"), rules).unwrap();
    let tests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/prometheus/netsight-alerts.test.yml"
    );
    std::fs::copy(tests, dir.join("netsight-alerts.test.yml")).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "netsight-alerts.test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Prometheus, a free port on the namespace's loopback.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `curl` inside the namespace (where serve and Prometheus listen) and parses JSON.
fn query(pair: &NetnsPair, ns: &str, port: u16, promql: &str) -> Value {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let out = pair.exec(
        ns,
        "curl",
        &[
            "-s",
            "--max-time",
            "5",
            "-G",
            &url,
            "--data-urlencode",
            &format!("query={promql}"),
        ],
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    started.elapsed()
}

#[test]
fn prometheus_scrapes_serve_and_fires_the_generated_alert() {
    if !privileged(
        "prometheus_scrapes_serve_and_fires_the_generated_alert",
        &["ip", "prometheus", "curl", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let ns = pair.a.clone();
    // The fault's overflows come with the clients' SYN retries (1, 3, 7 s apart):
    // a 10 s window keeps the finding up between them.
    let serve = Serve::start(Some((&pair, &ns)), &["--interval", "1s", "--window", "10s"]);
    let dir = std::env::temp_dir().join(format!("netsight-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = alert_rules("5s", "1s");
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\nscrape_configs:\n  - job_name: netsight\n    static_configs:\n      - targets: [\"{}\"]\n",
            dir.join("rules.yml").display(),
            serve.addr
        ),
    )
    .unwrap();
    // A free port in the namespace: nothing else listens there.
    let port = 19090;
    let child = pair.spawn(
        &ns,
        "prometheus",
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn",
        ],
    );
    let prometheus = Prometheus { child, dir, port };
    let ready = |path: &str| {
        pair.exec(
            &ns,
            "curl",
            &[
                "-sf",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{port}{path}"),
            ],
        )
        .status
        .success()
    };
    wait_for("prometheus ready", Duration::from_secs(60), || {
        ready("/-/ready")
    });
    wait_for("target up", Duration::from_secs(30), || {
        query(&pair, &ns, prometheus.port, "up{job=\"netsight\"}")["data"]["result"][0]["value"][1]
            == "1"
    });
    let series = query(
        &pair,
        &ns,
        prometheus.port,
        "count({__name__=~\"netsight_.*\"})",
    );
    let count: f64 = series["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0);
    assert!(count > 300.0, "{series}");
    // Before the fault: neither the finding nor the alert.
    let finding = "netsight_finding{rule=\"tcp.listen_overflows\"}";
    assert_eq!(
        query(&pair, &ns, prometheus.port, finding)["data"]["result"],
        serde_json::json!([])
    );
    // The fault: a listener with backlog 1 that never accepts, and clients connecting.
    let _holder = ConnHolder::start(&ns, &["listen-overflow"]);
    let firing = "ALERTS{alertname=\"NetsightTcpListenOverflows\",alertstate=\"firing\"}";
    let seen = wait_for("the finding in Prometheus", Duration::from_secs(40), || {
        query(&pair, &ns, prometheus.port, finding)["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    // for: 5s plus two 1 s evaluation intervals, with one scrape and sample of slack.
    let fired = wait_for("the alert firing", Duration::from_secs(5 + 2 + 3), || {
        query(&pair, &ns, prometheus.port, firing)["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    eprintln!("finding seen after {seen:?}, alert firing {fired:?} later");
}

/// The lines of a metrics text that start with `prefix`, sorted.
fn series(text: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// A /proc/PID/status field.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn serve_gives_up_privilege_and_still_reads_every_source() {
    if !privileged(
        "serve_gives_up_privilege_and_still_reads_every_source",
        &["ip", "curl", "python3", "id"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let ns = pair.a.clone();
    // Root's sockets, in a root process: their owner is found through
    // /proc/PID/fd, which nobody may read only with the capabilities kept.
    let holder = ConnHolder::start(&ns, &["pairs", "20"]);
    let nobody = Serve::start(Some((&pair, &ns)), &["--interval", "1s"]);
    let root = Serve::start(Some((&pair, &ns)), &["--interval", "1s", "--user", "root"]);
    // CAP_DAC_READ_SEARCH, NET_ADMIN, NET_RAW, SYS_PTRACE, PERFMON, BPF.
    let kept: u64 = [2, 12, 13, 19, 38, 39].iter().map(|b| 1u64 << b).sum();
    let nobody_uid = support::run("id", &["-u", "nobody"]).trim().to_string();
    for (serve, uid) in [(&nobody, nobody_uid.as_str()), (&root, "0")] {
        let pid = serve.child.id();
        assert_eq!(
            status_field(pid, "Uid"),
            [uid; 4].join("\t"),
            "{}",
            serve.banner
        );
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            let mask = u64::from_str_radix(&status_field(pid, set), 16).unwrap();
            assert_eq!(mask, kept, "{set} of serve as uid {uid}: {mask:x}");
        }
        assert_eq!(status_field(pid, "CapInh"), "0000000000000000");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    }
    let metrics_of = |serve: &Serve| {
        let (status, _, body) = get_in(&pair, &ns, serve.addr, "/metrics", "text/plain");
        assert_eq!(status, 200);
        body
    };
    let (as_nobody, as_root) = (metrics_of(&nobody), metrics_of(&root));
    let listener = format!(
        "netsight_listener_backlog_connections{{address=\"127.0.0.1\",port=\"{}\",process=\"python3\"}}",
        holder.ports[0]
    );
    assert!(
        as_nobody.contains(&listener),
        "the holder's listener without its process as nobody:\n{}",
        series(&as_nobody, "netsight_listener_backlog").join("\n")
    );
    // Nothing is lost by giving up privilege: the same sources fail, for the same reasons.
    for family in ["netsight_source_errors", "netsight_source_skipped"] {
        assert_eq!(
            series(&as_nobody, family),
            series(&as_root, family),
            "{family}"
        );
    }
}

#[test]
fn a_source_over_its_budget_is_served_stale() {
    if !privileged(
        "a_source_over_its_budget_is_served_stale",
        &["ip", "curl", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let ns = pair.a.clone();
    // 1,000 sockets: their dump, with owners, cannot finish within 1 ms.
    let _holder = ConnHolder::start(&ns, &["pairs", "500"]);
    let serve = Serve::start(
        Some((&pair, &ns)),
        &["--interval", "1s", "--source-budget", "1ms"],
    );
    let mut last = String::new();
    wait_for("sockets served stale", Duration::from_secs(30), || {
        last = get_in(&pair, &ns, serve.addr, "/metrics", "text/plain").2;
        value(&last, "netsight_source_stale{source=\"sockets\"}") == Some(1.0)
            && last
                .lines()
                .filter(|l| l.starts_with("netsight_sockets{") && l.contains("LISTEN"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .any(|n| n >= 1.0)
    });
    let overruns = value(&last, "netsight_source_overruns_total{source=\"sockets\"}").unwrap();
    assert!(overruns >= 1.0, "{overruns}");
    let age = value(&last, "netsight_source_age_seconds{source=\"sockets\"}").unwrap();
    assert!(age > 0.0, "a stale value's age: {age}");
}

/// Files in a directory under /tmp, removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_web_config_file_that_is_wrong_or_not_trusted_is_refused() {
    let dir = TempDir(std::env::temp_dir().join(format!("netsight-webcfg-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cases: [(&str, &str, u32, &str); 5] = [
        (
            "unknown.yml",
            "tls_server_cfg: {}\n",
            0o644,
            "unknown field",
        ),
        (
            "hash.yml",
            "basic_auth_users:\n  alice: plaintext\n",
            0o644,
            "not a bcrypt hash",
        ),
        (
            "nokey.yml",
            "tls_server_config:\n  cert_file: c.pem\n",
            0o644,
            "cert_file and key_file",
        ),
        (
            "old.yml",
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  min_version: TLS10\n",
            0o644,
            "c.pem",
        ),
        ("writable.yml", "{}\n", 0o666, "writable by group or others"),
    ];
    for (name, text, mode, expect) in cases {
        let path = dir.0.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
        let out = support::output(
            netsight(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--web-config-file",
                path.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {stderr}");
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: the error names the file: {stderr}"
        );
    }
}

#[test]
fn tls_and_basic_auth_from_a_web_config_file() {
    if !privileged(
        "tls_and_basic_auth_from_a_web_config_file",
        &[
            "ip",
            "curl",
            "openssl",
            "htpasswd",
            "promtool",
            "prometheus",
        ],
    ) {
        return;
    }
    let dir =
        TempDir(std::env::temp_dir().join(format!("netsight-prom-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = |name: &str| dir.0.join(name).to_str().unwrap().to_string();
    support::run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &path("key.pem"),
            "-out",
            &path("cert.pem"),
        ],
    );
    let hash = support::run("htpasswd", &["-nbBC", "10", "prom", "s3cret"]);
    let hash = hash.trim().strip_prefix("prom:").unwrap().to_string();
    // Relative paths: relative to the file, as node_exporter reads them.
    std::fs::write(
        path("web.yml"),
        format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prom: {hash}\n"),
    )
    .unwrap();
    let check = support::output("promtool", &["check", "web-config", &path("web.yml")]);
    assert!(check.status.success(), "promtool: {check:?}");

    let pair = NetnsPair::new();
    let ns = pair.a.clone();
    let serve = Serve::start(
        Some((&pair, &ns)),
        &["--interval", "1s", "--web-config-file", &path("web.yml")],
    );
    assert!(
        serve.banner.contains("https://") && serve.banner.contains("basic auth"),
        "{}",
        serve.banner
    );
    let url = format!("https://{}/metrics", serve.addr);
    let ca = path("cert.pem");
    let curl = |extra: &[&str], url: &str| {
        let mut args = vec!["-s", "-i", "--max-time", "10", "--cacert", &ca];
        args.extend_from_slice(extra);
        args.push(url);
        response(&pair.exec(&ns, "curl", &args).stdout)
    };
    let (status, _, body) = curl(&["-u", "prom:s3cret"], &url);
    assert_eq!(status, 200);
    assert!(value(&body, "netsight_samples_total").is_some(), "{body}");
    let (status, head, _) = curl(&[], &url);
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    assert_eq!(curl(&["-u", "prom:wrong"], &url).0, 401);
    assert_eq!(curl(&["-u", "nobody:s3cret"], &url).0, 401);
    // Plain HTTP to the TLS port gets no metrics.
    let plain = format!("http://{}/metrics", serve.addr);
    assert_ne!(curl(&["-u", "prom:s3cret"], &plain).0, 200);

    // A real Prometheus scrapes it over TLS with the password.
    std::fs::write(
        path("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netsight\n    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prom\n      password: s3cret\n    static_configs:\n      - targets: [\"{}\"]\n",
            path("cert.pem"),
            serve.addr
        ),
    )
    .unwrap();
    let port = 19091;
    let child = pair.spawn(
        &ns,
        "prometheus",
        &[
            &format!("--config.file={}", path("prometheus.yml")),
            &format!("--storage.tsdb.path={}", path("data")),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn",
        ],
    );
    let _prometheus = Prometheus {
        child,
        dir: dir.0.join("data"),
        port,
    };
    wait_for("target up over TLS", Duration::from_secs(60), || {
        query(&pair, &ns, port, "up{job=\"netsight\"}")["data"]["result"][0]["value"][1] == "1"
    });
}
