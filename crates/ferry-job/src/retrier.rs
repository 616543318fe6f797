//! One phase's outages, as the user sees them: each transient failure is retried with
//! [`Policy::OUTAGE`] until one outage outlasts `Ferry.RetryWindowSeconds`, and is reported as
//! [`ProgressEvent::Trouble`] (which side, the error, the attempt, since when); the end of the
//! outage as [`ProgressEvent::Recovered`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::progress::{ProgressEvent, ProgressSink, SIDE_SOURCE, SIDE_TARGET};
use ferry_core::retry::{Policy, Retry, Verdict};

use crate::error::JobError;
use crate::spec::JobSpec;

/// Which server a phase's error message is about: it names the source or the target (by word,
/// or by `host:port`), or cannot be told (`""`).
pub(crate) fn side_of(spec: &JobSpec, message: &str) -> &'static str {
    let lower = message.to_lowercase();
    let src = format!("{}:{}", spec.source.host, spec.source.port);
    let dst = format!("{}:{}", spec.target.host, spec.target.port);
    let s = lower.contains("source") || (src != dst && message.contains(&src));
    let t = lower.contains("target") || (src != dst && message.contains(&dst));
    match (s, t) {
        (true, false) => SIDE_SOURCE,
        (false, true) => SIDE_TARGET,
        _ => "",
    }
}

/// The retry state of one phase.
pub(crate) struct Retrier<'a> {
    what: &'static str,
    spec: &'a JobSpec,
    progress: &'a ProgressSink,
    /// Set while an outage is under way (shared with a sink that sees progress).
    pub(crate) troubled: Arc<AtomicBool>,
    retry: Retry,
}

impl<'a> Retrier<'a> {
    pub(crate) fn new(what: &'static str, spec: &'a JobSpec, progress: &'a ProgressSink) -> Self {
        Retrier {
            what,
            spec,
            progress,
            troubled: Arc::new(AtomicBool::new(false)),
            retry: Retry::new(Policy::OUTAGE, spec.options.retry_window),
        }
    }

    /// A transient failure: reports it and says how long to wait before the next attempt, or
    /// gives the error back once the outage has outlasted the window. `progressed`: the phase
    /// made progress since the last failure (a new outage begins).
    pub(crate) fn failed(&mut self, e: JobError, progressed: bool) -> Result<Duration, JobError> {
        if progressed || !self.troubled.load(Ordering::SeqCst) {
            self.retry.recovered();
        }
        let verdict = self.retry.failed();
        self.troubled.store(true, Ordering::SeqCst);
        let Verdict::Wait(wait) = verdict else {
            return Err(JobError::RetryWindow {
                last: Box::new(e),
                seconds: self.retry.age().as_secs(),
                window: self.retry.window().0.as_secs(),
            });
        };
        let attempt = self.retry.attempts();
        let since = self.retry.outage().map_or(0, |o| o.since);
        let error = e.to_string();
        tracing::warn!(what = self.what, error = %error, attempt, "transient failure: retrying");
        (self.progress)(ProgressEvent::Retrying {
            what: self.what.into(),
            error: error.clone(),
            attempt,
        });
        (self.progress)(ProgressEvent::Trouble {
            what: self.what.into(),
            side: side_of(self.spec, &error).into(),
            error,
            attempt,
            since,
            gives_up_at: self.retry.gives_up_at(),
        });
        Ok(wait)
    }

    /// The phase succeeded: an outage under way is over.
    pub(crate) fn succeeded(&mut self) {
        if self.troubled.swap(false, Ordering::SeqCst) {
            (self.progress)(ProgressEvent::Recovered {
                what: self.what.into(),
            });
        }
        self.retry.recovered();
    }
}
