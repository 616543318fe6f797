//! Calls of the API's actions on behalf of the console, with the answers of reading actions
//! (`Describe*`) and of the lag series shared for [`super::READ_TTL`]: one call per interval
//! however many viewers poll. A change made from the console drops what is cached, so the
//! next page shows it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::envelope;
use crate::handler::{ActionHandler, ApiCall, ApiError, ParamEncoding, SeriesSample};

/// At most this many answers are cached (expired ones go first).
const MAX_CACHED: usize = 1000;

#[derive(Clone)]
enum Cached {
    Answer(Result<Map<String, Value>, ApiError>),
    Series(Result<Arc<Vec<SeriesSample>>, ApiError>),
}

/// The handler and the cache of its answers.
pub struct Reads {
    handler: Arc<dyn ActionHandler>,
    cache: Mutex<HashMap<String, (Instant, Cached)>>,
}

impl Reads {
    pub fn new(handler: Arc<dyn ActionHandler>) -> Reads {
        Reads {
            handler,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn call(version: &str, action: &str, params: Map<String, Value>, secret_id: &str) -> ApiCall {
        ApiCall {
            version: version.to_string(),
            action: action.to_string(),
            region: None,
            params,
            encoding: ParamEncoding::Json,
            request_id: envelope::new_request_id(),
            secret_id: secret_id.to_string(),
        }
    }

    /// Looks `key` up, or runs `fetch` and keeps its answer; the lock is held meanwhile, so
    /// concurrent viewers wait for the one call instead of making their own.
    async fn cached<F>(&self, key: String, fetch: F) -> Cached
    where
        F: std::future::Future<Output = Cached>,
    {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some((at, v)) = cache.get(&key) {
            if now.duration_since(*at) < super::READ_TTL {
                return v.clone();
            }
        }
        let v = fetch.await;
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| now.duration_since(*at) < super::READ_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), v.clone()));
        v
    }

    /// A reading action's answer (cached).
    pub async fn describe(
        &self,
        version: &str,
        action: &str,
        params: Map<String, Value>,
        secret_id: &str,
    ) -> Result<Map<String, Value>, ApiError> {
        let key = format!("{version}\n{action}\n{}", Value::Object(params.clone()));
        let handler = &self.handler;
        let call = Self::call(version, action, params, secret_id);
        match self
            .cached(key, async move { Cached::Answer(handler.handle(call).await) })
            .await
        {
            Cached::Answer(r) => r,
            Cached::Series(_) => Err(ApiError::internal("the console cache mixed two answers")),
        }
    }

    /// A job's lag series (cached).
    pub async fn series(
        &self,
        job_id: &str,
        since: i64,
        resolution: i64,
    ) -> Result<Arc<Vec<SeriesSample>>, ApiError> {
        // `since` moves with the clock: rounded to the resolution so that viewers share it.
        let since = since - since.rem_euclid(resolution.max(1));
        let key = format!("series\n{job_id}\n{since}\n{resolution}");
        let handler = &self.handler;
        match self
            .cached(key, async move {
                Cached::Series(handler.series(job_id, since, resolution).await.map(Arc::new))
            })
            .await
        {
            Cached::Series(r) => r,
            Cached::Answer(_) => Err(ApiError::internal("the console cache mixed two answers")),
        }
    }

    /// A job's extras ([`ActionHandler::job_extras`], cached).
    pub async fn extras(&self, job_id: &str) -> Result<Map<String, Value>, ApiError> {
        let key = format!("extras\n{job_id}");
        let handler = &self.handler;
        match self
            .cached(
                key,
                async move { Cached::Answer(handler.job_extras(job_id).await) },
            )
            .await
        {
            Cached::Answer(r) => r,
            Cached::Series(_) => Err(ApiError::internal("the console cache mixed two answers")),
        }
    }

    /// The repair SQL file of a compare task (not cached: a download is rare).
    pub async fn repair_sql(
        &self,
        job_id: &str,
        compare_task_id: &str,
    ) -> Result<Option<std::path::PathBuf>, ApiError> {
        self.handler.repair_sql(job_id, compare_task_id).await
    }

    /// Runs an action that changes something (never cached; drops the cache).
    pub async fn act(
        &self,
        version: &str,
        action: &str,
        params: Map<String, Value>,
        secret_id: &str,
    ) -> Result<Map<String, Value>, ApiError> {
        self.handler.lookup(version, action)?;
        let out = self
            .handler
            .handle(Self::call(version, action, params, secret_id))
            .await;
        self.cache.lock().await.clear();
        out
    }
}
