//! `netsight serve`: a background sampler takes a snapshot every interval and runs
//! doctor's rules over a rolling window; an HTTP server on loopback serves the
//! latest sample as OpenMetrics (`/metrics`), the report as JSON (`/findings`) and
//! a health check (`/-/healthy`). A scrape copies the sample's encoded bytes: it
//! costs no kernel reads, and every scrape of one sample agrees.

pub mod alerts;
pub mod dashboard;
pub mod metrics;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use netsight_kernel::Snapshot;

pub use metrics::{Limits, Sample};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the HTTP runtime: {0}")]
    Runtime(std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub interval: Duration,
    /// doctor's rules run over this much history (at least one interval).
    pub window: Duration,
    pub limits: Limits,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

/// What scrapes read: the latest sample, encoded.
#[derive(Debug, Default)]
struct Latest {
    metrics: Bytes,
    /// The same in Prometheus' text format 0.0.4.
    metrics_text: Bytes,
    findings: Bytes,
    /// When the sample was published (None before the first).
    taken: Option<Instant>,
}

/// Keeps `window` of history (older snapshots without their sockets) and
/// diagnoses from the oldest to the newest.
#[derive(Debug)]
struct Sampler {
    history: VecDeque<Snapshot>,
    window: Duration,
    samples: u64,
}

impl Sampler {
    fn sample(&mut self) -> Sample {
        let started = Instant::now();
        let snapshot = Snapshot::take_with_sockets(true);
        let collect_s = started.elapsed().as_secs_f64();
        if let Some(last) = self.history.back_mut() {
            last.sockets = None;
        }
        self.history.push_back(snapshot);
        // Keep the oldest snapshot still within the window (or just the previous one).
        let newest_ns = self.history.back().map_or(0, |s| s.meta.monotonic_ns);
        while self.history.len() > 2 {
            let second = self.history[1].meta.monotonic_ns;
            if newest_ns.saturating_sub(second) >= self.window.as_nanos() as u64 {
                self.history.pop_front();
            } else {
                break;
            }
        }
        self.samples += 1;
        let cur = self.history.back().cloned().unwrap_or_else(Snapshot::take);
        let diagnosed = Instant::now();
        let (report, window_s) = match self.history.front() {
            Some(oldest) if self.history.len() >= 2 => (
                netsight_doctor::diagnose(oldest, &cur),
                (cur.meta
                    .monotonic_ns
                    .saturating_sub(oldest.meta.monotonic_ns)) as f64
                    / 1e9,
            ),
            // The first sample: counters only, no window yet.
            _ => (netsight_report::Report::default(), 0.0),
        };
        Sample {
            snapshot: cur,
            report,
            window_s,
            collect_s,
            diagnose_s: diagnosed.elapsed().as_secs_f64(),
            samples_total: self.samples,
        }
    }
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The encoded sample plus its age now: a slow or stuck sampler shows as a
/// growing age while the last sample keeps being served.
fn with_age(encoded: &Bytes, age_s: f64, openmetrics: bool) -> Bytes {
    let age = format!(
        "# HELP netsight_sample_age_seconds Seconds since the sample served was taken (grows when sampling is slow or stuck)\n# TYPE netsight_sample_age_seconds gauge\nnetsight_sample_age_seconds {age_s:.3}\n"
    );
    let body: &[u8] = if openmetrics {
        encoded.strip_suffix(b"# EOF\n").unwrap_or(encoded)
    } else {
        encoded
    };
    let mut out = Vec::with_capacity(body.len() + age.len() + 6);
    out.extend_from_slice(body);
    out.extend_from_slice(age.as_bytes());
    if openmetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    Bytes::from(out)
}

/// Prometheus asks for OpenMetrics in its Accept header; others get the 0.0.4 text.
fn wants_openmetrics(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.contains("application/openmetrics-text"))
        })
}

fn route(request: &Request<Incoming>, latest: &RwLock<Latest>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"only GET and HEAD\n"),
        );
    }
    let latest = latest.read().unwrap_or_else(|e| e.into_inner());
    let age = latest.taken.map(|t| t.elapsed().as_secs_f64());
    match (request.uri().path(), age) {
        ("/metrics", Some(age)) if wants_openmetrics(request) => respond(
            StatusCode::OK,
            OPENMETRICS,
            with_age(&latest.metrics, age, true),
        ),
        ("/metrics", Some(age)) => respond(
            StatusCode::OK,
            PROMETHEUS_TEXT,
            with_age(&latest.metrics_text, age, false),
        ),
        ("/findings", Some(_)) => {
            respond(StatusCode::OK, "application/json", latest.findings.clone())
        }
        ("/metrics" | "/findings", None) => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"the first sample is being taken\n"),
        ),
        ("/-/healthy", _) => respond(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"netsight serve is healthy\n"),
        ),
        ("/", _) => respond(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(
                b"netsight serve: /metrics (OpenMetrics), /findings (JSON), /-/healthy\n",
            ),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: /metrics, /findings, /-/healthy\n"),
        ),
    }
}

/// Binds, then samples and serves until `stop` is set. `ready` is told the bound
/// address once the first sample is in (what a supervisor or a test waits on).
pub fn serve(
    options: &Options,
    stop: &(dyn Fn() -> bool + Sync),
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(options.listen);
    let latest = Arc::new(RwLock::new(Latest::default()));
    let mut sampler = Sampler {
        history: VecDeque::new(),
        window: options.window.max(options.interval),
        samples: 0,
    };
    let publish = |sample: Sample, latest: &RwLock<Latest>| {
        let findings = serde_json::to_vec_pretty(&sample.report).unwrap_or_default();
        let text = metrics::encode(Arc::new(sample), &options.limits);
        let mut l = latest.write().unwrap_or_else(|e| e.into_inner());
        *l = Latest {
            metrics_text: Bytes::from(metrics::to_prometheus_text(&text)),
            metrics: Bytes::from(text),
            findings: Bytes::from(findings),
            taken: Some(Instant::now()),
        };
    };
    publish(sampler.sample(), &latest);
    ready(bound);
    std::thread::scope(|scope| {
        let latest_for_sampler = Arc::clone(&latest);
        scope.spawn(move || {
            let mut next = Instant::now() + options.interval;
            while !stop() {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(200)));
                    continue;
                }
                // A sample slower than the interval pushes the next one back
                // instead of starting a burst to catch up.
                next = (next + options.interval).max(Instant::now());
                publish(sampler.sample(), &latest_for_sampler);
            }
        });
        runtime.block_on(accept_loop(listener, latest, options.max_connections, stop));
    });
    Ok(())
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    latest: Arc<RwLock<Latest>>,
    max_connections: usize,
    stop: &(dyn Fn() -> bool + Sync),
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    while !stop() {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((stream, _peer))) = accepted else {
            continue;
        };
        // At the limit, later connections wait here (in the accept queue) for a slot.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let latest = Arc::clone(&latest);
        tokio::task::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = route(&request, &latest);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                // A slow or silent client: its headers must arrive within 5 s.
                .header_read_timeout(Duration::from_secs(5))
                // Oversized request heads are refused (431) at 16 KiB.
                .max_buf_size(16 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A connection lives at most 60 s, keep-alive included.
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
        });
    }
}
