//! `netsight serve`: a background sampler takes a snapshot every interval and runs
//! doctor's rules over a rolling window; an HTTP server on loopback serves the
//! latest sample as OpenMetrics (`/metrics`), the report as JSON (`/findings`) and
//! a health check (`/-/healthy`). A scrape copies the sample's encoded bytes: it
//! costs no kernel reads, and every scrape of one sample agrees.

pub mod alerts;
pub mod dashboard;
pub mod metrics;
mod sampler;
pub mod web_config;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

pub use metrics::{Limits, PartStatus, Sample};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("giving up privileges after binding: {0}")]
    Privileges(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub interval: Duration,
    /// doctor's rules run over this much history (at least one interval).
    pub window: Duration,
    pub limits: Limits,
    /// Each source's time budget per sample; one over it is served stale.
    pub source_budget: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// TLS and basic auth (--web-config-file), when asked for.
    pub web: Option<web_config::WebConfig>,
    /// As root, the user sampling continues as (default "nobody"), keeping only
    /// the capabilities the sources need.
    pub user: Option<String>,
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

/// What a scrape adds to the encoded sample, measured now: the sample's age (a
/// slow or stuck sampler shows as a growing age while the last sample keeps being
/// served) and the cost of serving (CPU per scrape is the rate of
/// netsight_http_cpu_seconds_total over the rate of netsight_scrapes_total).
fn scrape_trailer(age_s: f64, scrapes: u64, openmetrics: bool) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: String| {
        let series = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        let declared = if kind == "counter" && !openmetrics {
            &series
        } else {
            name
        };
        out += &format!("# HELP {declared} {help}\n# TYPE {declared} {kind}\n{series} {value}\n");
    };
    family(
        "netsight_sample_age_seconds",
        "gauge",
        "Seconds since the sample served was taken (grows when sampling is slow or stuck)",
        format!("{age_s:.3}"),
    );
    family(
        "netsight_scrapes",
        "counter",
        "Requests for /metrics served",
        scrapes.to_string(),
    );
    family(
        "netsight_http_cpu_seconds",
        "counter",
        "CPU time of the thread that serves HTTP (parsing, copying the encoded sample, writing)",
        format!("{:.6}", cpu_seconds(rustix::time::ClockId::ThreadCPUTime)),
    );
    family(
        "netsight_process_cpu_seconds",
        "counter",
        "CPU time of the whole process, sampler included (user and system)",
        format!("{:.6}", cpu_seconds(rustix::time::ClockId::ProcessCPUTime)),
    );
    if let Some(rss) = resident_bytes() {
        family(
            "netsight_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the process",
            rss.to_string(),
        );
    }
    out
}

fn cpu_seconds(clock: rustix::time::ClockId) -> f64 {
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// /proc/self/statm's second field (resident pages), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

fn with_trailer(encoded: &Bytes, trailer: &str, openmetrics: bool) -> Bytes {
    let body: &[u8] = if openmetrics {
        encoded.strip_suffix(b"# EOF\n").unwrap_or(encoded)
    } else {
        encoded
    };
    let mut out = Vec::with_capacity(body.len() + trailer.len() + 6);
    out.extend_from_slice(body);
    out.extend_from_slice(trailer.as_bytes());
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

/// What every connection shares.
struct Shared {
    latest: RwLock<Latest>,
    scrapes: AtomicU64,
    auth: Option<Arc<web_config::BasicAuth>>,
}

async fn authorized(request: &Request<Incoming>, shared: &Shared) -> bool {
    let Some(auth) = &shared.auth else {
        return true;
    };
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // bcrypt takes tens of milliseconds: off the thread that serves the others.
    let auth = Arc::clone(auth);
    tokio::task::spawn_blocking(move || auth.check(header.as_deref()))
        .await
        .unwrap_or(false)
}

async fn route(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    if !authorized(&request, &shared).await {
        let mut response = respond(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            Bytes::from_static(b"unauthorized\n"),
        );
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"netsight\""),
        );
        return response;
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"only GET and HEAD\n"),
        );
    }
    let latest = shared.latest.read().unwrap_or_else(|e| e.into_inner());
    let age = latest.taken.map(|t| t.elapsed().as_secs_f64());
    let scrape = |openmetrics: bool, age: f64| {
        let scrapes = shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let encoded = if openmetrics {
            &latest.metrics
        } else {
            &latest.metrics_text
        };
        with_trailer(
            encoded,
            &scrape_trailer(age, scrapes, openmetrics),
            openmetrics,
        )
    };
    match (request.uri().path(), age) {
        ("/metrics", Some(age)) if wants_openmetrics(&request) => {
            respond(StatusCode::OK, OPENMETRICS, scrape(true, age))
        }
        ("/metrics", Some(age)) => respond(StatusCode::OK, PROMETHEUS_TEXT, scrape(false, age)),
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

/// Binds, gives up what sampling does not need, then samples and serves until
/// `stop` is set. `ready` is told the bound address and what privilege is kept,
/// once the first sample is in (what a supervisor or a test waits on).
pub fn serve(
    options: &Options,
    stop: &(dyn Fn() -> bool + Sync),
    ready: impl FnOnce(SocketAddr, &str),
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
    let kept = netsight_kernel::privilege::keep_only_for_sampling(options.user.as_deref())
        .map_err(ServeError::Privileges)?;
    let shared = Arc::new(Shared {
        latest: RwLock::new(Latest::default()),
        scrapes: AtomicU64::new(0),
        auth: options.web.as_ref().and_then(|w| w.auth.clone()),
    });
    let tls = options
        .web
        .as_ref()
        .and_then(|w| w.tls.clone())
        .map(tokio_rustls::TlsAcceptor::from);
    let mut sampler = sampler::Sampler {
        collector: sampler::PartCollector::new(
            netsight_kernel::LiveSource {
                include_socket_owners: true,
                ..netsight_kernel::LiveSource::default().with_sockets()
            },
            options.source_budget,
        ),
        history: VecDeque::new(),
        window: options.window.max(options.interval),
        samples: 0,
    };
    let publish = |sample: Sample, shared: &Shared| {
        let findings = serde_json::to_vec_pretty(&sample.report).unwrap_or_default();
        let text = metrics::encode(Arc::new(sample), &options.limits);
        let mut l = shared.latest.write().unwrap_or_else(|e| e.into_inner());
        *l = Latest {
            metrics_text: Bytes::from(metrics::to_prometheus_text(&text)),
            metrics: Bytes::from(text),
            findings: Bytes::from(findings),
            taken: Some(Instant::now()),
        };
    };
    publish(sampler.sample(), &shared);
    ready(bound, &kept);
    std::thread::scope(|scope| {
        let for_sampler = Arc::clone(&shared);
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
                publish(sampler.sample(), &for_sampler);
            }
        });
        runtime.block_on(accept_loop(
            listener,
            shared,
            tls,
            options.max_connections,
            stop,
        ));
    });
    Ok(())
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::task::spawn(async move {
            let _slot = slot;
            // A connection lives at most 60 s, handshake and keep-alive included.
            let _ = tokio::time::timeout(Duration::from_secs(60), async move {
                match tls {
                    Some(acceptor) => {
                        // The handshake must finish within 5 s, like a request head.
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream));
                        if let Ok(Ok(stream)) = handshake.await {
                            serve_connection(stream, shared).await;
                        }
                    }
                    None => serve_connection(stream, shared).await,
                }
            })
            .await;
        });
    }
}

async fn serve_connection<IO>(io: IO, shared: Arc<Shared>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, std::convert::Infallible>(route(request, shared).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A slow or silent client: its headers must arrive within 5 s.
        .header_read_timeout(Duration::from_secs(5))
        // Oversized request heads are refused (431) at 16 KiB.
        .max_buf_size(16 * 1024)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let _ = connection.await;
}
