//! TLS and basic auth from a file in Prometheus' web-config format (the one
//! node_exporter's --web.config.file reads, which `promtool check web-config`
//! validates): `tls_server_config` (cert_file, key_file, client_auth_type,
//! client_ca_file, min_version, max_version) and `basic_auth_users` (bcrypt hashes).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::Deserialize;
use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
}

/// What serve does with each connection and request.
#[derive(Clone)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

/// netsight runs as root: a file another user can write must not choose its
/// certificate or its passwords.
fn check_trusted(path: &Path) -> Result<(), WebConfigError> {
    let fail = |detail: String| WebConfigError::File {
        path: path.to_path_buf(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    for (what, m) in [
        (Some(path), Some(meta)),
        (dir, dir.and_then(|d| std::fs::metadata(d).ok())),
    ] {
        let (Some(what), Some(m)) = (what, m) else {
            continue;
        };
        // In a sticky world-writable directory (/tmp) the file's own owner and mode count.
        if let Some(why) = netsight_kernel::trust::untrusted(what, &m, true) {
            return Err(fail(format!("{why}: refusing to let it steer serve")));
        }
    }
    Ok(())
}

fn read_trusted(path: &Path) -> Result<Vec<u8>, WebConfigError> {
    check_trusted(path)?;
    std::fs::read(path).map_err(|e| WebConfigError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Reads and checks the file; every mistake is an error here, not at the first request.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let invalid = |detail: String| WebConfigError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let text = read_trusted(path)?;
    let file: WebConfigFile = if text.iter().all(u8::is_ascii_whitespace) {
        WebConfigFile {
            tls_server_config: None,
            basic_auth_users: BTreeMap::new(),
        }
    } else {
        serde_yaml_ng::from_slice(&text).map_err(|e| invalid(e.to_string()))?
    };
    // Relative paths are relative to the file's directory, as in exporter-toolkit.
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = match file.tls_server_config {
        Some(tls) => {
            Some(Arc::new(tls_config(&tls, base).map_err(|detail| {
                invalid(format!("tls_server_config: {detail}"))
            })?))
        }
        None => None,
    };
    let mut users = BTreeMap::new();
    for (user, hash) in file.basic_auth_users {
        if user.contains(':') || user.is_empty() {
            return Err(invalid(format!(
                "basic_auth_users: {user:?} is not a user name (empty or with ':')"
            )));
        }
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(invalid(format!(
                "basic_auth_users: {user}: not a bcrypt hash (make one with `htpasswd -nBC 10 {user}`)"
            )));
        }
        users.insert(user, hash);
    }
    let auth = (!users.is_empty()).then(|| {
        Arc::new(BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    });
    Ok(WebConfig { tls, auth })
}

/// The versions spoken, oldest first.
const TLS_VERSIONS: [(&str, &rustls::SupportedProtocolVersion); 2] = [
    ("TLS12", &rustls::version::TLS12),
    ("TLS13", &rustls::version::TLS13),
];

/// Where a web-config version name falls in TLS_VERSIONS.
fn tls_version(name: &str) -> Result<usize, String> {
    match TLS_VERSIONS.iter().position(|(n, _)| *n == name) {
        Some(i) => Ok(i),
        None if matches!(name, "TLS10" | "TLS11") => {
            Err(format!("{name}: only TLS12 and TLS13 are spoken"))
        }
        None => Err(format!("{name}: not a TLS version (TLS12 or TLS13)")),
    }
}

fn tls_config(tls: &TlsServerConfig, base: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err("cert_file and key_file are both required".into());
    };
    let resolve = |p: &Path| base.join(p);
    let pem = |p: &Path| read_trusted(&resolve(p)).map_err(|e| e.to_string());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem(cert_file)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no certificate in it",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem(key_file)?)
        .map_err(|e| format!("key_file {}: {e}", key_file.display()))?;
    let min = tls_version(tls.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = tls_version(tls.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = TLS_VERSIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| (min..=max).contains(i))
        .map(|(_, (_, v))| *v)
        .collect();
    if versions.is_empty() {
        return Err("min_version is above max_version".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verifying = matches!(
        auth_type,
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert"
    );
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        _ if verifying => {
            let Some(ca_file) = &tls.client_ca_file else {
                return Err(format!("client_auth_type {auth_type} needs client_ca_file"));
            };
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(&pem(ca_file)?) {
                let ca = ca.map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?;
                roots
                    .add(ca)
                    .map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "client_auth_type {auth_type}: accepts certificates nobody verified; use RequireAndVerifyClientCert with client_ca_file"
            ))
        }
        other => {
            return Err(format!(
                "client_auth_type {other}: one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ))
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file and key_file: {e}"))
}

/// Users and their bcrypt hashes. A bcrypt check costs tens of milliseconds by
/// design, so credentials that passed are remembered (as exporter-toolkit does).
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for BasicAuth {
    // Never the hashes or the remembered credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A hash compared against when the user is unknown, so that unknown and known
/// users take the same time.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl BasicAuth {
    /// Whether an Authorization header value admits the request.
    pub fn check(&self, header: Option<&str>) -> bool {
        let Some(header) = header else {
            return false;
        };
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(header)
        {
            return true;
        }
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= 64 {
                verified.clear();
            }
            verified.insert(header.to_string());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        BasicAuth {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), bcrypt::hash(p, 4).unwrap()))
                .collect(),
            verified: Mutex::new(HashSet::new()),
        }
    }

    fn header(user_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    }

    #[test]
    fn basic_auth_admits_only_the_right_password() {
        let a = auth(&[("alice", "s3cret")]);
        assert!(a.check(Some(&header("alice:s3cret"))));
        // Remembered, and still right.
        assert!(a.check(Some(&header("alice:s3cret"))));
        assert!(!a.check(Some(&header("alice:wrong"))));
        assert!(!a.check(Some(&header("bob:s3cret"))));
        assert!(!a.check(Some("Basic !!!notbase64")));
        assert!(!a.check(Some("Bearer abc")));
        assert!(!a.check(Some(&header("alice"))));
        assert!(!a.check(None));
    }

    #[test]
    fn the_dummy_hash_is_a_bcrypt_hash() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }
}
