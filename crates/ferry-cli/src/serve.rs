//! `ferry serve`: the HTTP API server. Loads the configuration (flags > environment > file >
//! defaults), the API credentials (configured, or generated into the data directory), opens the
//! job service on the data directory, serves the Tencent Cloud API 3.0-compatible API and, on
//! SIGTERM or SIGINT, stops accepting calls, lets the job service stop its jobs at a safe point
//! and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use ferry_api::config::{ConfigOverrides, LogFormat, ServerConfig};
use ferry_api::credentials::{self, CredentialSource};
use ferry_api::server::{self, ServerOptions};
use ferry_api::ActionHandler;
use ferry_service::manager::ClusterOptions;
use ferry_service::store::url::ENV_STORE_PASSWORD;
use ferry_service::store::StoreLocation;
use ferry_service::{Service, ServiceOptions};

/// The API versions served, as printed at start.
const API_VERSIONS: &str = "2018-03-30, 2021-12-06";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (ferry.toml; see config/ferry.toml).
    #[arg(long, value_name = "FILE", env = "FERRY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, IP:PORT (port 0 picks a free one) [default: 127.0.0.1:8080].
    /// Environment: FERRY_LISTEN.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The data directory (job store, generated credentials) [default: ferry-data].
    /// Environment: FERRY_DATA_DIR.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP even when listening on an address other than loopback (by default such
    /// a server speaks HTTPS with a certificate generated into the data directory). Environment:
    /// FERRY_INSECURE_HTTP=1.
    #[arg(long)]
    insecure_http: bool,
    /// The job store: `sqlite` (DATA_DIR/ferry.db) or `mysql://USER@HOST:PORT/DB` (a MySQL or
    /// MariaDB database several nodes may share; options `?tls=MODE&tls-ca=FILE`; the password
    /// in FERRY_STORE_PASSWORD). Environment: FERRY_STORE; config file: `[store] url`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// This node's id among several sharing a MySQL job store (cluster mode) [default:
    /// HOSTNAME:PORT]. Environment: FERRY_NODE_ID; config file: `[cluster] node_id`.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
}

/// The configuration of this start: file, then environment, then flags. `log_format` and
/// `verbose` are the global flags.
pub fn load_config(args: &ServeArgs, log_format: Option<LogFormat>, verbose: u8) -> Result<ServerConfig> {
    let mut config = ServerConfig::load(args.config.as_deref())?;
    config.apply(&ConfigOverrides::from_env()?)?;
    let level = match verbose {
        0 => None,
        1 => Some("debug,mysql_async=warn,hyper=info".to_string()),
        _ => Some("debug".to_string()),
    };
    config.apply(&ConfigOverrides {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        log_format,
        log_level: level,
        insecure_http: args.insecure_http.then_some(true),
        store: args.store.clone(),
        node_id: args.node_id.clone(),
        ..ConfigOverrides::default()
    })?;
    Ok(config)
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(config: ServerConfig) -> Result<ExitCode> {
    let addr = config.listen_addr()?;
    let data_dir = config.data_dir.clone();
    let env_pair = ferry_api::config::env_credentials(|name| std::env::var(name).ok())?;
    let (dir, configured) = (data_dir.clone(), config.credentials.clone());
    let generate_tls = config.wants_generated_tls()?;
    let configured_tls = config.tls.clone();
    // File work off the async threads.
    let (store, source, tls) = tokio::task::spawn_blocking(move || {
        credentials::ensure_data_dir(&dir)?;
        let (store, source) = credentials::resolve(&configured, env_pair, &dir)?;
        // HTTPS by default off loopback: a self-signed certificate kept in the data directory.
        let tls = match configured_tls {
            Some(tls) => Some((tls, false)),
            None if generate_tls => Some(ferry_api::tls::ensure_self_signed(&dir, addr)?),
            None => None,
        };
        let tls = match tls {
            Some((tls, generated)) => {
                let fingerprint = ferry_api::tls::fingerprint(&tls.cert)?;
                Some((tls, generated, fingerprint))
            }
            None => None,
        };
        Ok::<_, ferry_api::Error>((store, source, tls))
    })
    .await??;

    let job_store = StoreLocation::parse(
        config.store.url.as_deref().unwrap_or_default(),
        std::env::var(ENV_STORE_PASSWORD).ok(),
    )?;
    // A shared store: cluster mode, this node one of several.
    let cluster = job_store.is_shared().then(|| ClusterOptions {
        node_id: config
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(|| default_node_id(addr.port())),
        lease: Duration::from_secs(config.cluster.lease_seconds),
        claim_interval: Duration::from_secs(config.cluster.claim_interval_seconds),
    });
    if let Some(c) = &cluster {
        tracing::info!(node_id = %c.node_id, store = %job_store, "cluster mode");
    }
    let service = Service::open(
        &data_dir,
        ServiceOptions {
            max_running_jobs: config.jobs.max_running,
            store: job_store.clone(),
            cluster,
            ..ServiceOptions::default()
        },
    )
    .await
    .map_err(|e| match &job_store {
        StoreLocation::Sqlite => anyhow!(
            "{e}; check the directory's permissions and free space, or choose another with --data-dir"
        ),
        StoreLocation::Mysql(_) => {
            anyhow!("{e}; check the store server, the account's privileges on the database and --store")
        }
    })?;
    let handler: Arc<dyn ActionHandler> = service.clone();
    let bound = match server::bind(
        addr,
        handler,
        ServerOptions {
            limits: config.limits.clone(),
            credentials: store.clone(),
            tls: tls.as_ref().map(|(tls, _, _)| tls.clone()),
            allowed_hosts: config.allowed_hosts.clone(),
        },
    )
    .await
    {
        Ok(bound) => bound,
        Err(e) => {
            service.shutdown().await;
            return Err(e.into());
        }
    };

    match &source {
        CredentialSource::Generated { path, secret_id } => println!(
            "ferry serve: generated an API key pair (SecretId {secret_id}) in {}; clients sign \
             with it (`ferry api --data-dir {}` reads it)",
            path.display(),
            data_dir.display()
        ),
        CredentialSource::DataDir(path) => {
            tracing::info!(path = %path.display(), "using the API key pair of the data directory")
        }
        CredentialSource::Configured => {
            tracing::info!(secret_ids = ?store.secret_ids(), "using the configured API key pairs")
        }
    }
    if let Some((tls, generated, fingerprint)) = &tls {
        let in_data_dir = tls.cert
            == data_dir
                .join(ferry_api::tls::GENERATED_DIR)
                .join(ferry_api::tls::GENERATED_CERT);
        println!(
            "ferry serve: TLS certificate {}{}, SHA-256 fingerprint {fingerprint} (`ferry api \
             --fingerprint FINGERPRINT` pins it{})",
            tls.cert.display(),
            if *generated { " (generated now)" } else { "" },
            if in_data_dir {
                format!("; `ferry api --data-dir {}` reads it", data_dir.display())
            } else {
                String::new()
            }
        );
    }
    // The listening line comes last: whoever waits for it has seen everything printed before.
    println!(
        "ferry serve: listening on {} (API versions {API_VERSIONS})",
        bound.url()
    );
    tracing::info!(
        listen = %bound.local_addr(),
        data_dir = %data_dir.display(),
        store = %job_store,
        tls = tls.is_some(),
        "ferry serve started"
    );

    let served = bound.serve(shutdown_signal()).await;
    tracing::info!("stopping: waiting for running jobs to reach a safe point");
    service.shutdown().await;
    served.context("the API server stopped")?;
    tracing::info!("ferry serve stopped");
    Ok(ExitCode::SUCCESS)
}

/// `HOSTNAME:PORT`, or `HOSTNAME:pid-PID` when the port is picked at start (port 0).
fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    if port == 0 {
        format!("{host}:pid-{}", std::process::id())
    } else {
        format!("{host}:{port}")
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the server");
            None
        }
    };
    let term_recv = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = term_recv => tracing::info!("SIGTERM received"),
    }
}
