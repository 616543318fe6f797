//! The web console under `/console/`, on the API's own listener: server-rendered pages of the
//! jobs, their steps, lag charts, pre-check and verification, and forms for the job actions.
//!
//! It knows nothing about jobs either: every page is rendered from the answers of the API's own
//! actions (DescribeMigrateJobs, DescribeMigrationDetail, DescribeMigrationCheckJob,
//! DescribeCompareReport) and every button calls an action (StartMigrateJob, PauseMigrateJob, …)
//! through the same [`ActionHandler`] the API serves, so there is one implementation of each.
//! The charts come from [`ActionHandler::series`].
//!
//! Access ([`session`]): sign-in with an API key pair, a session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` under HTTPS, [`session::SESSION_LIFETIME_SECONDS`]), a CSRF token
//! in every form that changes something (POST only), failed sign-ins throttled per address.
//! Every response carries a CSP without inline script, `frame-ancestors 'none'`,
//! `X-Frame-Options: DENY` and `nosniff`. Without a session, pages redirect to the sign-in page
//! and fragments, downloads and actions answer 401.
//!
//! Reads are cached for [`READ_TTL`] ([`reads`]): however many browsers poll a job, the handler
//! is asked once per interval.

pub mod chart;
pub mod html;
pub mod reads;
pub mod routes;
pub mod session;

pub use routes::router;

use std::time::Duration;

/// How long an answer of a Describe action is reused (and the pages' polling interval).
pub const READ_TTL: Duration = Duration::from_secs(2);
