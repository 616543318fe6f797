//! Helpers of the cluster tests: `ferry serve` nodes on a shared MariaDB job store, a
//! MigrateType 3 job request, and the job's owner and status as any live node or the store
//! sees them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use ferry_api::Client;
use ferry_testkit::{source, target, wait_until};
use serde_json::{json, Value};

use super::api::job_info;
use super::serve::Serve;

/// How a test's nodes reach their store and authenticate: the store URL and password, the
/// directory the nodes' data directories go under, the API key pair and the store key.
pub struct Nodes {
    url: String,
    password: String,
    dir: PathBuf,
    secret_id: &'static str,
    secret_key: &'static str,
    store_key: String,
}

impl Nodes {
    /// Nodes on the store database `store` of the target test server.
    pub fn new(store: &str, dir: &Path, secret_id: &'static str, secret_key: &'static str) -> Nodes {
        let (url, password) = ferry_testkit::store_url(store);
        Nodes::with(url, password, dir, secret_id, secret_key)
    }

    /// Nodes on the store database `store` of the server `on`.
    pub fn on(
        on: &ferry_core::Endpoint,
        store: &str,
        dir: &Path,
        secret_id: &'static str,
        secret_key: &'static str,
    ) -> Nodes {
        let (url, password) = ferry_testkit::store_url_on(on, store);
        Nodes::with(url, password, dir, secret_id, secret_key)
    }

    fn with(
        url: String,
        password: String,
        dir: &Path,
        secret_id: &'static str,
        secret_key: &'static str,
    ) -> Nodes {
        Nodes {
            url,
            password,
            dir: dir.to_path_buf(),
            secret_id,
            secret_key,
            store_key: "5e".repeat(32),
        }
    }

    /// Node `id`, its data directory under the test's directory.
    pub fn start(&self, id: &str) -> Result<Serve> {
        self.start_with(id, &[])
    }

    /// [`Nodes::start`] with more environment variables (e.g. `FERRY_FAULTS`).
    pub fn start_with(&self, id: &str, envs: &[(&str, &str)]) -> Result<Serve> {
        let mut all = vec![
            ("FERRY_STORE_PASSWORD", self.password.as_str()),
            ("FERRY_STORE_KEY", self.store_key.as_str()),
        ];
        all.extend_from_slice(envs);
        super::serve::start_keyed_with(
            &self.dir.join(id).join("data"),
            self.secret_id,
            self.secret_key,
            &["--store", &self.url, "--node-id", id],
            &all,
        )
    }

    /// The command line of node `id` with its data directory `data` under the test's directory,
    /// for a process expected not to start (spawned by the caller).
    pub fn command(&self, id: &str, data: &str) -> std::process::Command {
        let mut cmd = super::serve::ferry_clean();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.dir.join(data))
            .args(["--store", &self.url, "--node-id", id])
            .env("FERRY_STORE_PASSWORD", &self.password)
            .env("FERRY_STORE_KEY", &self.store_key)
            .env("FERRY_SECRET_ID", self.secret_id)
            .env("FERRY_SECRET_KEY", self.secret_key);
        cmd
    }

    /// An API client of node `s`.
    pub fn client(&self, s: &Serve) -> Client {
        Client::new(s.url.clone(), self.secret_id, self.secret_key)
    }
}

/// A MigrateType 3 job request for database `db` (full + incremental, no verification).
pub fn job_request(name: &str, db: &str) -> Value {
    let (src, dst) = (source(), target());
    json!({
        "JobName": name,
        "MigrateOption": {"RunMode": 1, "MigrateType": 3, "MigrateObject": 2, "ConsistencyType": 5},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": src.host, "Port": src.port, "User": src.user, "Password": src.password.expose()},
        "DstDatabaseType": "mysql", "DstAccessType": "extranet",
        "DstInfo": {"Ip": dst.host, "Port": dst.port, "User": dst.user, "Password": dst.password.expose()},
        "DatabaseInfo": json!([{"Database": db}]).to_string(),
    })
}

/// The node holding the job's lease and the lease's epoch, as stored in `store`.
pub async fn owner_in(t: &mut mysql_async::Conn, store: &str, job: &str) -> Result<(String, u64)> {
    use mysql_async::prelude::Queryable;
    let row: Option<(String, u64)> = t
        .exec_first(
            format!("SELECT owner, epoch FROM {store}.jobs WHERE job_id = ?"),
            (job,),
        )
        .await?;
    row.ok_or_else(|| anyhow!("job {job} is not in the store"))
}

/// The job's status and ErrorInfo through the first of `clients` that answers.
pub async fn status_via(clients: &[Client], job: &str) -> Result<(i64, String)> {
    let mut last = None;
    for c in clients {
        match job_info(c, job).await {
            Ok(i) => return Ok((i["Status"].as_i64().unwrap_or(0), i["ErrorInfo"].to_string())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no node to ask")))
}

/// Waits until a node answers status `want` (no node answering, e.g. while the store is down,
/// counts as not yet); fails at once when the job ends in another final status.
pub async fn wait_status_via(clients: &[Client], job: &str, want: i64, secs: u64) -> Result<()> {
    wait_until(secs, &format!("status {want} through a live node"), || async {
        match status_via(clients, job).await {
            Ok((s, err)) if s != want && matches!(s, 5 | 9 | 10) => {
                Err(anyhow!("the job ended in {s} while waiting for {want}: {err}"))
            }
            Ok((s, _)) => Ok(s == want),
            Err(_) => Ok(false),
        }
    })
    .await
}
