//! `ferry api ACTION`: calls an action of a `ferry serve` server (or any Tencent Cloud API 3.0
//! endpoint) signed with TC3-HMAC-SHA256, and prints the `Response` pretty-printed. Parameters
//! come from `--json FILE|-` and `--param Name=Value` (values are JSON when they parse as JSON,
//! else strings; dotted names nest). Exit 0 on success, 1 when the response has `Error` (code and
//! message also on stderr) or the call could not be made.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _, Result};
use ferry_api::credentials::{read_credentials_file, CREDENTIALS_FILE};
use ferry_api::Client;
use serde_json::{Map, Value};

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The action, e.g. DescribeMigrateJobs.
    action: String,
    /// The server's URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        env = "FERRY_ENDPOINT"
    )]
    endpoint: String,
    /// The API version.
    #[arg(long, value_name = "VERSION", default_value = "2018-03-30")]
    api_version: String,
    /// A parameter, NAME=VALUE; VALUE is JSON when it parses as JSON (1, true, ["a"], {"k":1}),
    /// else a string; dotted names nest (MigrateOption.RunMode=1). Repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The parameters as a JSON object, from a file or `-` for standard input; --param values
    /// are applied over it.
    #[arg(long, value_name = "FILE|-")]
    json: Option<String>,
    /// SecretId to sign with (with --secret-key).
    #[arg(long, value_name = "ID", env = "FERRY_SECRET_ID", hide_env_values = true)]
    secret_id: Option<String>,
    /// SecretKey to sign with.
    #[arg(long, value_name = "KEY", env = "FERRY_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Read the key pair from DIR/credentials.toml (the one `ferry serve` generates) when none is
    /// given [default: ferry-data].
    #[arg(long, value_name = "DIR", env = "FERRY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Also trust this PEM CA certificate (a server with a self-signed certificate).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// X-TC-Region to send.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

/// Runs `ferry api`.
pub async fn api(args: ApiArgs) -> Result<ExitCode> {
    // Files and standard input are read off the async threads.
    let args = std::sync::Arc::new(args);
    let inputs = args.clone();
    let (params, (secret_id, secret_key), ca_pem) = tokio::task::spawn_blocking(move || {
        let ca_pem = match &inputs.ca_cert {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("--ca-cert {}: cannot be read", path.display()))?,
            ),
            None => None,
        };
        anyhow::Ok((
            build_params(inputs.json.as_deref(), &inputs.params)?,
            key_pair(&inputs)?,
            ca_pem,
        ))
    })
    .await??;
    let mut client = Client::new(&args.endpoint, secret_id, secret_key);
    if let Some(region) = &args.region {
        client = client.with_region(region);
    }
    if let (Some(pem), Some(path)) = (ca_pem, &args.ca_cert) {
        client = client
            .with_ca_pem(&pem)
            .map_err(|e| anyhow!("--ca-cert {}: {e}", path.display()))?;
    }
    let response = client
        .call_response(&args.api_version, &args.action, Value::Object(params))
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&response).unwrap_or_else(|_| response.to_string())
    );
    if let Some(error) = response.get("Error") {
        let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        eprintln!("error: {}: {}", text("Code"), text("Message"));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn key_pair(args: &ApiArgs) -> Result<(String, String)> {
    match (&args.secret_id, &args.secret_key) {
        (Some(id), Some(key)) => return Ok((id.clone(), key.clone())),
        (Some(_), None) => bail!("--secret-id is given without --secret-key (or FERRY_SECRET_KEY)"),
        (None, Some(_)) => bail!("--secret-key is given without --secret-id (or FERRY_SECRET_ID)"),
        (None, None) => {}
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(ferry_api::config::DEFAULT_DATA_DIR));
    let path = dir.join(CREDENTIALS_FILE);
    if !path.exists() {
        bail!(
            "no API key pair: give --secret-id and --secret-key, set FERRY_SECRET_ID and \
             FERRY_SECRET_KEY, or --data-dir of the server ({} does not exist)",
            path.display()
        );
    }
    let pair = read_credentials_file(&path)?;
    Ok((pair.secret_id, pair.secret_key))
}

/// The parameter object from `--json` and `--param`.
fn build_params(json: Option<&str>, params: &[String]) -> Result<Map<String, Value>> {
    let mut object = match json {
        None => Map::new(),
        Some(source) => {
            let text = if source == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("--json -: cannot read standard input")?;
                text
            } else {
                std::fs::read_to_string(source).with_context(|| format!("--json {source}: cannot be read"))?
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => bail!("--json {source}: must be a JSON object of parameters"),
                Err(e) => bail!("--json {source}: not valid JSON: {e}"),
            }
        }
    };
    for param in params {
        set_param(&mut object, param)?;
    }
    Ok(object)
}

/// Applies one `NAME=VALUE`.
fn set_param(object: &mut Map<String, Value>, param: &str) -> Result<()> {
    let (name, raw) = param
        .split_once('=')
        .ok_or_else(|| anyhow!("--param {param:?}: expected NAME=VALUE"))?;
    let path: Vec<&str> = name.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        bail!("--param {param:?}: the name has an empty part");
    }
    let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut level = object;
    for (i, part) in path.iter().enumerate() {
        if i + 1 == path.len() {
            level.insert((*part).to_string(), value);
            return Ok(());
        }
        let entry = level
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        level = match entry {
            Value::Object(map) => map,
            _ => bail!(
                "--param {param:?}: {} is already set to a value that is not an object",
                path[..=i].join(".")
            ),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_nest_and_parse_json_values() {
        let p = build_params(
            None,
            &[
                "JobName=my job".into(),
                "MigrateOption.RunMode=1".into(),
                "MigrateOption.MigrateType=3".into(),
                "JobIds=[\"a\",\"b\"]".into(),
                "Flag=true".into(),
                "Quoted=\"1\"".into(),
                "Empty=".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({
                "JobName": "my job",
                "MigrateOption": {"RunMode": 1, "MigrateType": 3},
                "JobIds": ["a", "b"],
                "Flag": true,
                "Quoted": "1",
                "Empty": "",
            })
        );
        assert!(build_params(None, &["NoEquals".into()]).is_err());
        assert!(build_params(None, &["A=1".into(), "A.B=2".into()]).is_err());
        assert!(build_params(None, &["A..B=2".into()]).is_err());
    }
}
