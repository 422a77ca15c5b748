//! How a request ends once its response's head has gone out: when its body does (its last
//! frame, its trailers, an error, a panic, or a drop half-way). What the head decided (a failed
//! response's event) waits for that end; a gRPC call's status may come only then, in trailers.

use std::error::Error as StdError;
use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode};
use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::SpanStatus;

use super::finish::Tracking;
use super::grpc::{self, GrpcStatus};
use super::meter::Meter;
use crate::client::Health;
use crate::event::{self, ErrorValue, Failure, RequestOutcome};
use crate::scope::{Caught, RequestScope};

/// How a response's body ended.
pub(crate) enum BodyEnd<'a> {
    /// Its last frame went out (or it was dropped unread: nothing streamed was cut short).
    Complete,
    /// Its trailers went out: a gRPC call's status is read from them (and a failure's event
    /// id header written into them).
    Trailers(&'a mut HeaderMap),
    /// Polling it returned this error.
    Failed(Arc<dyn StdError + Send + Sync>),
    /// Polling it panicked.
    Panicked(Caught),
    /// Dropped half-way: the client went away.
    Cancelled,
}

/// What a request still owes once its response's head has gone out: its end, when its body
/// ends.
pub(crate) enum Ending {
    /// A tracked request, classified by its head.
    Tracked(Pending),
    /// Nothing can be sent: the latency count alone, with the status the head gave.
    Metered {
        meter: Meter,
        status: u16,
        /// A gRPC call whose status is still to come, in trailers.
        trailers: bool,
    },
}

/// A tracked request between its response's head and its body's end.
pub(crate) struct Pending {
    tracking: Tracking,
    status: u16,
    /// Whether the request failed (its event may still have been dropped by `sample_rate`).
    failed: bool,
    /// The error event to send.
    failure: Option<Box<Failure>>,
    /// A gRPC call's status once read; `None` while it may still come in trailers.
    grpc_status: Option<i32>,
}

impl Ending {
    /// The untracked request's end, from its response's head.
    pub(crate) fn metered<B>(meter: Meter, response: &mut Response<B>, grpc: bool) -> Self {
        let status = response.status();
        if grpc && status == StatusCode::OK {
            if let Some(known) = grpc::status_of_head(response) {
                let status = event::grpc::http_status(i64::from(known.code));
                return Ending::Metered {
                    meter,
                    status,
                    trailers: false,
                };
            }
            return Ending::Metered {
                meter,
                status: 200,
                trailers: true,
            };
        }
        Ending::Metered {
            meter,
            status: status.as_u16(),
            trailers: false,
        }
    }

    /// The request's scope, for polling the body inside it.
    pub(crate) fn scope(&self) -> Option<&Arc<RequestScope>> {
        match self {
            Ending::Tracked(pending) => Some(&pending.tracking.scope),
            Ending::Metered { .. } => None,
        }
    }

    /// Whether the request is a gRPC call whose status is to come in trailers (a body that
    /// panics then ends with trailers that say `INTERNAL`).
    pub(crate) fn is_grpc(&self) -> bool {
        match self {
            Ending::Tracked(pending) => {
                pending.tracking.grpc.is_some() && pending.grpc_status.is_none()
            }
            Ending::Metered { trailers, .. } => *trailers,
        }
    }

    /// Ends the request as its body ended.
    pub(crate) fn end(self, end: BodyEnd<'_>) {
        match self {
            Ending::Tracked(pending) => pending.end(end),
            Ending::Metered {
                meter,
                status,
                trailers,
            } => {
                let status = match end {
                    BodyEnd::Complete => status,
                    BodyEnd::Trailers(headers) => match grpc::status_in(headers) {
                        Some(known) if trailers => event::grpc::http_status(i64::from(known.code)),
                        _ => status,
                    },
                    BodyEnd::Failed(_) | BodyEnd::Panicked(_) => 500,
                    BodyEnd::Cancelled => 499,
                };
                meter.end(status);
            }
        }
    }
}

impl Pending {
    /// The request, its response's head gone out with `status`, nothing decided yet.
    pub(super) fn new(tracking: Tracking, status: u16) -> Self {
        Pending {
            status,
            failed: false,
            failure: None,
            grpc_status: None,
            tracking,
        }
    }

    /// The request failed with `error` (the handler's, or its body's): an error event, unless
    /// `ignore_errors` drops it (then the request did not error: it is counted as the worker
    /// counts the ignored errors it sees). The chain's type names are only worked out when
    /// some errors are ignored.
    pub(super) fn fail_with_error(
        &mut self,
        error: Option<ErrorValue>,
        headers: Option<&mut HeaderMap>,
    ) {
        let client = &self.tracking.scope.client;
        let options = client.options_ref();
        let ignored = options.ignores_errors()
            && error.as_ref().is_some_and(|error| {
                let names = error.type_names();
                options.ignores_error(names.iter().map(String::as_str))
            });
        if ignored {
            client.record_discard(Reason::EventProcessor, Category::Error, 1);
            return;
        }
        self.failed = true;
        self.failure = self
            .tracking
            .event_id(headers)
            .map(|event_id| Box::new(Failure::Response { event_id, error }));
    }

    /// The gRPC call's status is known: a failure, if the classifier calls it one.
    pub(super) fn grpc_ended(&mut self, status: GrpcStatus, headers: Option<&mut HeaderMap>) {
        self.grpc_status = Some(status.code);
        if !self.tracking.config.is_grpc_failure(status.code) {
            return;
        }
        let client = &self.tracking.scope.client;
        let options = client.options_ref();
        let ignored = options.ignores_errors()
            && status.exceptions.as_ref().is_some_and(|exceptions| {
                options.ignores_error(exceptions.iter().map(|e| e.ty.as_str()))
            });
        if ignored {
            client.record_discard(Reason::EventProcessor, Category::Error, 1);
            return;
        }
        self.failed = true;
        self.failure = self.tracking.event_id(headers).map(|event_id| {
            Box::new(Failure::Grpc {
                event_id,
                code: status.code,
                message: status.message,
                exceptions: status.exceptions,
            })
        });
    }

    /// A gRPC call cut short: `DEADLINE_EXCEEDED` when its deadline (`grpc-timeout`) had
    /// passed, else `CANCELLED` (the client went away).
    pub(super) fn cut_short(&mut self) {
        if self.grpc_status.is_some() {
            return;
        }
        if self.tracking.deadline_passed() {
            let status = GrpcStatus {
                code: event::grpc::DEADLINE_EXCEEDED,
                message: Some("the call's deadline passed before it ended".to_owned()),
                exceptions: None,
            };
            self.grpc_ended(status, None);
        } else {
            self.grpc_status = Some(event::grpc::CANCELLED);
        }
    }

    pub(super) fn end(mut self, end: BodyEnd<'_>) {
        let mut body_status = None;
        let mut crashed = false;
        match end {
            BodyEnd::Complete => {}
            BodyEnd::Trailers(trailers) => {
                if self.tracking.grpc.is_some() && self.grpc_status.is_none() {
                    if let Some(status) = grpc::status_in(trailers) {
                        self.grpc_ended(status, Some(trailers));
                    }
                }
            }
            BodyEnd::Failed(error) => {
                body_status = Some(SpanStatus::InternalError);
                // A failed response's event already tells of the failure.
                if !self.failed {
                    let error = ErrorValue {
                        error,
                        type_name: None,
                        #[cfg(feature = "anyhow")]
                        anyhow: None,
                    };
                    self.fail_with_error(Some(error), None);
                }
            }
            BodyEnd::Panicked(caught) => {
                body_status = Some(SpanStatus::InternalError);
                crashed = true;
                self.failed = true;
                if self.tracking.grpc.is_some() {
                    self.grpc_status = Some(event::grpc::INTERNAL);
                }
                if let Caught::Fresh(details) = caught {
                    // The event id already handed out, if there was one, names the panic.
                    let event_id = match &self.failure {
                        Some(failure) => Some(failure.event_id()),
                        None => self.tracking.event_id(None),
                    };
                    self.failure =
                        event_id.map(|event_id| Box::new(Failure::Panic { event_id, details }));
                }
            }
            // A gRPC call cut short has a gRPC status for it.
            BodyEnd::Cancelled if self.tracking.grpc.is_some() => self.cut_short(),
            BodyEnd::Cancelled => body_status = Some(SpanStatus::Cancelled),
        }
        if self.grpc_status == Some(event::grpc::UNIMPLEMENTED) {
            self.tracking.unmatched();
        }
        let outcome = RequestOutcome {
            status: self.status,
            grpc_status: self.grpc_status,
            body_status,
        };
        let failed = self.failed;
        let tracking = self.tracking;
        let ended = tracking.count(outcome.latency_status(), || {
            if crashed {
                Health::Crashed
            } else if failed {
                Health::Errored
            } else {
                tracking.health()
            }
        });
        tracking.finish(outcome, self.failure, ended);
    }
}
