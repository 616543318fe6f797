//! Extra server instances of the test's own (`scripts/servers.sh start-one NAME`), for tests that
//! stop or restart a server: the shared source and target are never restarted.

use std::process::Command;

use anyhow::{bail, Context, Result};
use ferry_core::Endpoint;

/// `scripts/servers.sh ARGS…`, failing with its output when it fails; returns stdout.
pub fn servers(args: &[&str]) -> Result<String> {
    let script = crate::repo_root().join("scripts/servers.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "scripts/servers.sh {}: {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// [`servers`] off the async runtime's threads.
pub async fn servers_async(args: Vec<String>) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        servers(&args)
    })
    .await?
}

/// An extra instance, stopped when dropped (also when the test fails).
pub struct Instance {
    name: String,
    url: String,
}

impl Instance {
    /// Starts (initialising once) the instance `name` and returns it.
    pub async fn start(name: &str) -> Result<Instance> {
        servers_async(vec!["start-one".into(), name.into()]).await?;
        let url = servers_async(vec!["url".into(), name.into()]).await?;
        Ok(Instance {
            name: name.to_string(),
            url,
        })
    }

    /// Its endpoint.
    pub fn endpoint(&self) -> Result<Endpoint> {
        Endpoint::from_url(&self.url).map_err(|e| anyhow::anyhow!("{}: {e}", self.url))
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops it and starts it again on the same port (fails if the port changed).
    pub async fn restart(&self) -> Result<()> {
        self.stop().await?;
        servers_async(vec!["start-one".into(), self.name.clone()]).await?;
        let url = servers_async(vec!["url".into(), self.name.clone()]).await?;
        if url != self.url {
            bail!(
                "the restarted instance {} moved from {} to {url}",
                self.name,
                self.url
            );
        }
        Ok(())
    }

    /// Stops it (it can be started again with [`Instance::start_again`]).
    pub async fn stop(&self) -> Result<()> {
        servers_async(vec!["stop-one".into(), self.name.clone()]).await?;
        Ok(())
    }

    /// Starts it again after [`Instance::stop`].
    pub async fn start_again(&self) -> Result<()> {
        servers_async(vec!["start-one".into(), self.name.clone()]).await?;
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = servers(&["stop-one", &self.name]) {
            eprintln!("stopping {}: {e:#}", self.name);
        }
    }
}
