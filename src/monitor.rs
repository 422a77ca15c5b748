//! Cron monitors: each run of a recurring job reports `in_progress` when it starts and `ok` or
//! `error` (with its duration) when it ends, so the server can alert on a failed, late or
//! missed run.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use pin_project_lite::pin_project;
use sentry_types::protocol::v7::{
    Level, MonitorCheckIn, MonitorCheckInStatus, MonitorConfig, MonitorIntervalUnit,
    MonitorSchedule,
};

use crate::client::{Client, Job};
use crate::event::{self, Capture, Captured};
use crate::options::ConfigError;
use crate::scope::{self, Caught};

/// A scheduled job Sentry watches (the guide's Celery-beat case): wrap each run in
/// [`run`](Monitor::run). Give the schedule (and margins) and the server creates the monitor
/// with the first check-in and alerts when a run fails, runs too long, or does not come.
///
/// Check-ins are never sampled and never pass through `before_send`. A run that returns `Err`
/// or panics also reports its error (or panic) as an event, tagged `monitor`, and the loop
/// around it goes on.
///
/// ```
/// use std::time::Duration;
/// use lighttrace::{Client, MemorySink, Monitor, Options};
///
/// async fn cleanup() -> Result<u32, std::io::Error> {
///     Err(std::io::Error::other("the archive volume is full"))
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), lighttrace::ConfigError> {
/// let sink = MemorySink::new();
/// let client = Client::new(Options::new().sink(sink.clone()));
/// let monitor = Monitor::new("nightly-cleanup")
///     .crontab("0 3 * * *")?
///     .checkin_margin(5)
///     .max_runtime(30)
///     .client(client.clone());
///
/// // In the service: `loop { interval.tick().await; monitor.run(cleanup()).await; }`
/// let outcome = monitor.run(cleanup()).await;
/// assert!(outcome.is_err());
///
/// assert!(client.flush(Duration::from_secs(5)).await);
/// let statuses: Vec<String> = sink
///     .envelopes()
///     .iter()
///     .flat_map(|e| e.items().cloned().collect::<Vec<_>>())
///     .filter_map(|item| match item {
///         lighttrace::protocol::EnvelopeItem::MonitorCheckIn(c) => {
///             Some(format!("{:?}", c.status))
///         }
///         _ => None,
///     })
///     .collect();
/// assert_eq!(statuses, ["InProgress", "Error"]);
/// assert_eq!(sink.events()[0].tags["monitor"], "nightly-cleanup");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Monitor {
    slug: String,
    config: Option<MonitorConfig>,
    client: Option<Client>,
}

impl Monitor {
    /// A monitor with this slug (the monitor's id on the server), reporting through the
    /// [global client](crate::Client::install_global) unless given [one](Self::client).
    pub fn new(slug: impl Into<String>) -> Self {
        Monitor {
            slug: slug.into(),
            config: None,
            client: None,
        }
    }

    /// Reports through this client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Runs on a crontab schedule (`"0 3 * * *"`); an invalid one is an error that says so.
    pub fn crontab(self, schedule: &str) -> Result<Self, ConfigError> {
        let schedule =
            MonitorSchedule::from_crontab(schedule).map_err(|_| ConfigError::InvalidSchedule {
                schedule: schedule.to_owned(),
            })?;
        Ok(self.schedule(schedule))
    }

    /// Runs every `value` `unit`s (`interval(10, MonitorIntervalUnit::Minute)`).
    pub fn interval(self, value: u64, unit: MonitorIntervalUnit) -> Self {
        self.schedule(MonitorSchedule::Interval { value, unit })
    }

    fn schedule(mut self, schedule: MonitorSchedule) -> Self {
        let config = self.config.get_or_insert_with(|| MonitorConfig {
            schedule: schedule.clone(),
            checkin_margin: None,
            max_runtime: None,
            timezone: None,
            failure_issue_threshold: None,
            recovery_threshold: None,
        });
        config.schedule = schedule;
        self
    }

    /// Minutes a run may start late before it counts as missed (needs a schedule).
    pub fn checkin_margin(mut self, minutes: u64) -> Self {
        if let Some(config) = self.config.as_mut() {
            config.checkin_margin = Some(minutes);
        }
        self
    }

    /// Minutes a run may last before it counts as timed out (needs a schedule).
    pub fn max_runtime(mut self, minutes: u64) -> Self {
        if let Some(config) = self.config.as_mut() {
            config.max_runtime = Some(minutes);
        }
        self
    }

    /// The schedule's time zone, such as `Europe/Vienna` (needs a schedule; default UTC).
    pub fn timezone(mut self, zone: impl Into<String>) -> Self {
        if let Some(config) = self.config.as_mut() {
            config.timezone = Some(zone.into());
        }
        self
    }

    /// Runs `job` once, between an `in_progress` and an `ok` or `error` check-in. A panic in
    /// the job is caught (and reported), so a scheduling loop around it goes on.
    pub async fn run<F, T, E>(&self, job: F) -> Result<T, JobFailure<E>>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error + 'static,
    {
        let client = self
            .client
            .clone()
            .or_else(Client::global)
            .filter(Client::is_enabled);
        let check_in_id = event::new_event_id();
        let started = Instant::now();
        if let Some(client) = &client {
            self.check_in(client, check_in_id, MonitorCheckInStatus::InProgress, None);
        }
        let caught = CatchPanic { job }.await;
        let duration = Some(started.elapsed().as_secs_f64());
        let (outcome, report) = match caught {
            Ok(Ok(value)) => (Ok(value), None),
            Ok(Err(error)) => {
                let chain =
                    event::error_chain(&error, Some(std::any::type_name::<E>()), "monitor", false);
                (
                    Err(JobFailure::Failed(error)),
                    Some((Captured::Exceptions(chain), Level::Error)),
                )
            }
            Err(details) => {
                let message = details.as_ref().map_or_else(
                    || "panic in a scoped task".to_owned(),
                    |d| d.message.clone(),
                );
                let report = details.map(|d| (Captured::Panic(d), Level::Fatal));
                (Err(JobFailure::Panicked(message)), report)
            }
        };
        let Some(client) = client else {
            return outcome;
        };
        if let Some((what, level)) = report {
            client.capture(Capture {
                event_id: event::new_event_id(),
                level,
                timestamp: SystemTime::now(),
                what,
                origin_tag: Some(("monitor", self.slug.clone())),
                context: scope::process_capture_context(true),
            });
        }
        let status = match &outcome {
            Ok(_) => MonitorCheckInStatus::Ok,
            Err(_) => MonitorCheckInStatus::Error,
        };
        self.check_in(&client, check_in_id, status, duration);
        outcome
    }

    fn check_in(
        &self,
        client: &Client,
        check_in_id: sentry_types::Uuid,
        status: MonitorCheckInStatus,
        duration: Option<f64>,
    ) {
        client.submit(Job::CheckIn(Box::new(MonitorCheckIn {
            check_in_id,
            monitor_slug: self.slug.clone(),
            status,
            environment: client.options_ref().environment_ref().map(str::to_owned),
            duration,
            monitor_config: self.config.clone(),
        })));
    }
}

/// Why a monitored run failed.
#[non_exhaustive]
pub enum JobFailure<E> {
    /// The job returned this error.
    Failed(E),
    /// The job panicked (the panic was reported); its message.
    Panicked(String),
}

impl<E: fmt::Debug> fmt::Debug for JobFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobFailure::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            JobFailure::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for JobFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobFailure::Failed(e) => fmt::Display::fmt(e, f),
            JobFailure::Panicked(m) => write!(f, "the job panicked: {m}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for JobFailure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JobFailure::Failed(e) => Some(e),
            JobFailure::Panicked(_) => None,
        }
    }
}

pin_project! {
    /// A job's future with its panics caught (as tracked code: the hook records the stack).
    struct CatchPanic<F> {
        #[pin]
        job: F,
    }
}

impl<F: Future> Future for CatchPanic<F> {
    /// The job's output, or the panic's details (`None`: reported further in already).
    type Output = Result<F::Output, Option<event::PanicDetails>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let job = self.project().job;
        match scope::catch(true, || job.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(Caught::Fresh(details)) => Poll::Ready(Err(Some(details))),
            Err(Caught::AlreadyReported) => Poll::Ready(Err(None)),
        }
    }
}
