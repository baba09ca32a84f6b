use serde::{Deserialize, Serialize};

/// The answer of an optional kernel source: many drivers answer "not supported",
/// which is normal and shown as such, unlike a failure to ask at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum Support<T> {
    Available(T),
    NotSupported,
    /// Not collected: missing privilege, source absent in the bundle, or an error (the reason).
    Unavailable(String),
}

impl<T> Default for Support<T> {
    fn default() -> Self {
        Support::Unavailable("not collected".into())
    }
}

impl<T> Support<T> {
    pub fn available(&self) -> Option<&T> {
        match self {
            Support::Available(v) => Some(v),
            _ => None,
        }
    }
}

/// The reason recorded in a raw snapshot when a driver answered EOPNOTSUPP.
pub const NOT_SUPPORTED: &str = "not supported";

impl<T> Support<T> {
    /// Turns a recorded absence into the right variant.
    pub fn from_missing(reason: String) -> Self {
        if reason == NOT_SUPPORTED {
            Support::NotSupported
        } else {
            Support::Unavailable(reason)
        }
    }
}
