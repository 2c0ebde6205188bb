//! The host side of the agent protocol: install, rollback and status against one agent URL.

use std::sync::Arc;
use std::time::Duration;

use super::http::{self, Url};
use super::store::{Installed, Status};
use super::{DeployError, DeployResult, ErrorKind};

/// Talks to agents. One value serves many targets (and threads).
#[derive(Clone)]
pub struct Client {
    pub token: Option<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

impl Client {
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> DeployResult<T> {
        let (code, bytes) = http::request(
            url,
            self.tls.as_ref(),
            method,
            target,
            self.token.as_deref(),
            body,
            self.timeout,
        )?;
        if code == 200 {
            return serde_json::from_slice(&bytes).map_err(|e| {
                DeployError::new(ErrorKind::Io, format!("{url}: unreadable answer: {e}"))
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let msg = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {code}"));
        let kind = v["kind"]
            .as_str()
            .map_or(ErrorKind::Io, ErrorKind::from_name);
        Err(DeployError::new(kind, format!("{url}: {msg}")))
    }

    pub fn install(
        &self,
        url: &Url,
        bundle: &[u8],
        allow_downgrade: bool,
    ) -> DeployResult<Installed> {
        let target = if allow_downgrade {
            "/v1/install?allow_downgrade=1"
        } else {
            "/v1/install"
        };
        self.call(url, "POST", target, bundle)
    }

    pub fn rollback(&self, url: &Url) -> DeployResult<Installed> {
        self.call(url, "POST", "/v1/rollback", &[])
    }

    pub fn status(&self, url: &Url) -> DeployResult<Status> {
        self.call(url, "GET", "/v1/status", &[])
    }
}
