//! The options users reach for first: filters, propagation and continuation, the user from a
//! header, and cron monitors, through a real axum router.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{Context, Envelope, EnvelopeItem, MonitorCheckInStatus};
use lighttrace::{HandlerError, MemorySink, Monitor, Options, Sink, TrackingLayer};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(5);
const T: &str = "771a43a4192642f0b136d5159a501700";
const S: &str = "b0e6f15b45c36b12";

/// Counts what reaches it, and how often the client asked whether it would drop (which it
/// does only when it is about to build a transaction).
#[derive(Clone, Default)]
struct Counting {
    inner: MemorySink,
    asked: Arc<AtomicUsize>,
}

impl Sink for Counting {
    fn send(&self, envelope: Envelope) {
        common::Keep(self.inner.clone()).send(envelope);
    }
    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner.record_discard(reason, category, quantity);
    }
    fn would_drop(&self, _: Category) -> Option<Reason> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn options(sink: &Counting) -> Options {
    Options::new()
        .dsn(
            lighttrace::parse_dsn(&format!("https://{}@o42.ingest.example.com/1", common::KEY))
                .unwrap(),
        )
        .sink(sink.clone())
        .traces_sample_rate(1.0)
}

#[derive(Debug)]
struct DbError;
impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the pool is exhausted")
    }
}
impl std::error::Error for DbError {}

fn app(layer: TrackingLayer) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/users", get(|| async { "users" }))
        .route(
            "/db",
            get(|| async { Err::<(), _>(HandlerError::new(DbError)) }),
        )
        .route(
            "/io",
            get(|| async { Err::<(), _>(HandlerError::new(std::io::Error::other("disk"))) }),
        )
        .route(
            "/maintenance",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/me", get(|| async { "me" }))
        .layer(layer)
}

async fn send(app: &Router, request: Request<Body>) -> http::Response<Body> {
    common::served(app.clone().oneshot(request).await.unwrap()).await
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn without_a_rate_nothing_is_traced_but_errors_health_and_latency_are_kept() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        Options::new()
            .dsn(
                lighttrace::parse_dsn(&format!("https://{}@errors.example.com/1", common::KEY))
                    .unwrap(),
            )
            .release("api@1")
            .sink(sink.clone()),
    );
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/ok",
            get(|| async {
                let mut headers = http::HeaderMap::new();
                lighttrace::inject_trace_headers("http://next.internal/", &mut headers);
                headers["sentry-trace"].to_str().unwrap().to_owned()
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(layer);
    // An incoming decision still travels on to the next service; with none, none is made.
    let flags = [
        (Some("-1"), Some("1")),
        (Some("-0"), Some("0")),
        (None, None),
    ];
    for (incoming, outgoing) in flags {
        let mut req = Request::get("/ok");
        if let Some(flag) = incoming {
            let value = format!("771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12{flag}");
            req = req.header("sentry-trace", value);
        }
        let res = send(&app, req.body(Body::empty()).unwrap()).await;
        let body = http_body_util::BodyExt::collect(res.into_body()).await;
        let sent = String::from_utf8(body.unwrap().to_bytes().to_vec()).unwrap();
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts.get(2).copied(), outgoing, "{sent}");
    }
    let req = Request::get("/fail").body(Body::empty()).unwrap();
    assert_eq!(
        send(&app, req).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(client.close(Duration::from_secs(10)).await);
    assert!(
        sink.transactions().is_empty(),
        "no transaction without a rate"
    );
    assert_eq!(sink.events().len(), 1, "errors are sent");
    assert_eq!(sink.sessions().len(), 1, "release health is counted");
    let latency = client.latency();
    assert_eq!(latency.routes().len(), 2, "latency is counted");
    // Nothing was sampled out: nothing was to be recorded.
    assert!(sink
        .discarded()
        .iter()
        .all(|(r, _, _)| *r != Reason::SampleRate));
}

#[test]
fn the_old_names_are_gone() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sources = String::new();
    let mut dirs = vec![std::path::PathBuf::from(format!("{root}/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    for old in [
        "pub fn get_dsn",
        "pub fn get_release",
        "pub fn get_environment",
        "pub fn get_spotlight",
        "pub trait ClassifyResponse",
        "pub trait FutureExt",
        "Io(std::io::Error)",
    ] {
        assert!(!sources.contains(old), "`{old}` is still in src/");
    }
}

#[tokio::test]
async fn filtered_transactions_are_never_built_and_are_counted() {
    let sink = Counting::default();
    let layer = TrackingLayer::with_options(
        options(&sink)
            .ignore_transactions(["/health"])
            .trace_ignore_status_codes([404]),
    );
    let client = layer.client().clone();
    let app = app(layer);
    for _ in 0..5 {
        send(&app, get_req("/health")).await;
    }
    // HEAD and OPTIONS (CORS preflights) are not traced by default.
    send(&app, Request::head("/users").body(Body::empty()).unwrap()).await;
    send(
        &app,
        Request::options("/users").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(client.flush(WAIT).await);
    assert!(sink.inner.transactions().is_empty());
    assert_eq!(
        sink.asked.load(Ordering::Relaxed),
        0,
        "nothing was about to be built"
    );
    let ignored: u32 = sink
        .inner
        .discarded()
        .iter()
        .filter(|d| **d == (Reason::EventProcessor, Category::Transaction, 1))
        .map(|d| d.2)
        .sum();
    assert_eq!(
        ignored, 5,
        "ignore_transactions counts what it drops; methods do not"
    );

    // A status in trace_ignore_status_codes: dropped at the end, counted with its root span,
    // never an error.
    sink.inner.clear();
    assert_eq!(send(&app, get_req("/nowhere")).await.status(), 404);
    send(&app, get_req("/users")).await;
    assert!(client.flush(WAIT).await);
    let names: Vec<_> = sink
        .inner
        .transactions()
        .into_iter()
        .map(|t| t.name.unwrap_or_default())
        .collect();
    assert_eq!(names, ["GET /users"]);
    assert!(sink.inner.events().is_empty());
    let discarded = sink.inner.discarded();
    assert!(discarded.contains(&(Reason::EventProcessor, Category::Transaction, 1)));
    assert!(discarded.contains(&(Reason::EventProcessor, Category::Span, 1)));
}

#[tokio::test]
async fn a_named_transaction_is_ignored_by_its_name_and_keeps_its_route_template() {
    use std::sync::Mutex;
    let sink = Counting::default();
    let sampled = Arc::new(Mutex::new(Vec::new()));
    let seen = sampled.clone();
    let named = Arc::new(Mutex::new(Vec::new()));
    let namer_saw = named.clone();
    let layer = TrackingLayer::with_options(
        options(&sink)
            .ignore_transactions(["GET /static/*"])
            .traces_sampler(move |ctx| {
                let route = ctx.route().map(str::to_owned);
                let name = ctx.transaction_name().map(str::to_owned);
                seen.lock().unwrap().push((route, name));
                1.0
            }),
    )
    .transaction_name(move |req| {
        namer_saw
            .lock()
            .unwrap()
            .push(req.route().map(str::to_owned));
        let path = req.uri().path();
        if path.starts_with("/static/") {
            Some("GET /static/*".to_owned())
        } else if path.starts_with("/assets/") {
            Some("GET /assets/*".to_owned())
        } else {
            None
        }
    });
    let client = layer.client().clone();
    let app = Router::new()
        .route("/static/{*file}", get(|| async { "js" }))
        .route("/assets/{*file}", get(|| async { "css" }))
        .layer(layer);
    send(&app, get_req("/static/app.js")).await;
    send(&app, get_req("/assets/site.css")).await;
    assert!(client.flush(WAIT).await);
    // The ignored name is never a transaction, and is counted.
    let names: Vec<_> = sink
        .inner
        .transactions()
        .into_iter()
        .map(|t| t.name.unwrap_or_default())
        .collect();
    assert_eq!(names, ["GET /assets/*"]);
    assert!(sink
        .inner
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Transaction, 1)));
    // The route is the template everywhere; the name is the user's.
    assert_eq!(
        *named.lock().unwrap(),
        [
            Some("/static/{*file}".to_owned()),
            Some("/assets/{*file}".to_owned())
        ]
    );
    assert_eq!(
        *sampled.lock().unwrap(),
        [(
            Some("/assets/{*file}".to_owned()),
            Some("GET /assets/*".to_owned())
        )]
    );
    let latency = client.latency();
    assert_eq!(latency.route("GET /assets/{*file}").unwrap().count, 1);
    assert_eq!(latency.route("GET /static/{*file}").unwrap().count, 1);
    let text = latency.prometheus();
    assert!(text.contains("route=\"/assets/{*file}\""), "{text}");
    assert!(!text.contains("route=\"GET /assets/*\""), "{text}");
}

#[tokio::test]
async fn ignored_errors_and_statuses_never_become_events() {
    let sink = Counting::default();
    let layer = TrackingLayer::with_options(
        options(&sink)
            .traces_sample_rate(0.0)
            .ignore_errors(["DbError"])
            .ignore_error_statuses([503]),
    );
    let client = layer.client().clone();
    let app = app(layer);
    assert_eq!(send(&app, get_req("/db")).await.status(), 500);
    assert_eq!(send(&app, get_req("/maintenance")).await.status(), 503);
    assert_eq!(send(&app, get_req("/io")).await.status(), 500);
    assert!(client.flush(WAIT).await);
    let events = sink.inner.events();
    assert_eq!(events.len(), 1, "only the io::Error");
    assert_eq!(events[0].exception.values.last().unwrap().ty, "io::Error");
    assert!(sink
        .inner
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Error, 1)));
}

#[tokio::test]
async fn the_error_sampler_decides_per_event() {
    let sink = Counting::default();
    let layer = TrackingLayer::with_options(options(&sink).traces_sample_rate(0.0).error_sampler(
        |event| {
            let noisy = event.exception.values.iter().any(|e| e.ty == "DbError");
            if noisy {
                0.0
            } else {
                1.0
            }
        },
    ));
    let client = layer.client().clone();
    let app = app(layer);
    for _ in 0..3 {
        send(&app, get_req("/db")).await;
    }
    send(&app, get_req("/io")).await;
    assert!(client.flush(WAIT).await);
    assert_eq!(sink.inner.events().len(), 1);
    let sampled: u32 = sink
        .inner
        .discarded()
        .iter()
        .filter(|d| d.0 == Reason::SampleRate && d.1 == Category::Error)
        .map(|d| d.2)
        .sum();
    assert_eq!(sampled, 3);
}

fn trace_of(tx: &lighttrace::protocol::Transaction<'_>) -> lighttrace::protocol::TraceContext {
    match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => (**t).clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn traces_of_other_organizations_are_not_continued() {
    let sink = Counting::default();
    let strict = TrackingLayer::with_options(options(&sink).strict_trace_continuation(true));
    let client = strict.client().clone();
    let app = app(strict);
    let with_org = |org: Option<&str>| {
        let mut req = Request::get("/users").header("sentry-trace", format!("{T}-{S}-1"));
        if let Some(org) = org {
            req = req.header(
                "baggage",
                format!("sentry-trace_id={T},sentry-public_key=k,sentry-org_id={org}"),
            );
        }
        req.body(Body::empty()).unwrap()
    };
    // The DSN's host (o42.ingest…) says this client belongs to organization 42.
    send(&app, with_org(Some("42"))).await;
    send(&app, with_org(Some("7"))).await;
    send(&app, with_org(None)).await;
    assert!(client.flush(WAIT).await);
    let txs = sink.inner.transactions();
    let continued: Vec<bool> = txs
        .iter()
        .map(|t| trace_of(t).trace_id.to_string() == T)
        .collect();
    assert_eq!(
        continued,
        [true, false, false],
        "same org only, when strict"
    );
    // Searchable by status: the response status is in the trace context's data.
    assert_eq!(trace_of(&txs[0]).data["http.response.status_code"], 200);

    // Outgoing baggage carries the organization.
    let probe = Router::new()
        .route(
            "/out",
            get(|| async {
                let mut headers = http::HeaderMap::new();
                lighttrace::inject_trace_headers("http://downstream.internal/x", &mut headers);
                headers["baggage"].to_str().unwrap().to_owned()
            }),
        )
        .layer(TrackingLayer::with_client(client.clone()));
    let res = send(&probe, get_req("/out")).await;
    let baggage = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    let baggage = String::from_utf8(baggage.to_vec()).unwrap();
    assert!(baggage.contains("sentry-org_id=42"), "{baggage}");
}

#[derive(Clone)]
struct Claims(String);

#[tokio::test]
async fn the_user_comes_from_a_header_unless_it_looks_like_a_credential() {
    let sink = Counting::default();
    let layer = TrackingLayer::with_options(options(&sink).traces_sample_rate(1.0))
        .user_from_header(http::HeaderName::from_static("x-user-id"));
    let client = layer.client().clone();
    let app = app(layer);
    for value in [
        "42",
        "Bearer eyJhbGciOi.eyJzdWIi.sig",
        "4111 1111 1111 1111",
        "a b",
    ] {
        let req = Request::get("/me")
            .header("x-user-id", value)
            .body(Body::empty())
            .unwrap();
        send(&app, req).await;
    }
    assert!(client.flush(WAIT).await);
    let users: Vec<Option<String>> = sink
        .inner
        .transactions()
        .into_iter()
        .map(|t| t.user.and_then(|u| u.id))
        .collect();
    assert_eq!(users, [Some("42".to_owned()), None, None, None]);

    // The closure variant reads what authentication middleware left in the extensions.
    let sink = Counting::default();
    let layer = TrackingLayer::with_options(options(&sink)).user_from(|req| {
        let claims = req.extensions().get::<Claims>()?;
        Some(lighttrace::User {
            id: Some(claims.0.clone()),
            ..Default::default()
        })
    });
    let client = layer.client().clone();
    let app = Router::new()
        .route("/me", get(|| async { "me" }))
        .layer(layer)
        .layer(axum::middleware::from_fn(
            |mut req: Request<Body>, next: axum::middleware::Next| async move {
                req.extensions_mut().insert(Claims("user-7".into()));
                next.run(req).await
            },
        ));
    send(&app, get_req("/me")).await;
    assert!(client.flush(WAIT).await);
    let user = sink.inner.transactions()[0].user.clone().unwrap();
    assert_eq!(user.id.as_deref(), Some("user-7"));
}

#[tokio::test]
async fn a_monitored_job_checks_in_and_a_failing_run_does_not_stop_the_loop() {
    let sink = Counting::default();
    let client = lighttrace::Client::new(options(&sink).environment("production"));
    let monitor = Monitor::new("import")
        .interval(10, lighttrace::protocol::MonitorIntervalUnit::Minute)
        .checkin_margin(2)
        .client(client.clone());
    let mut runs = 0;
    for round in 0..3 {
        let outcome = monitor
            .run(async move {
                if round == 1 {
                    panic!("bad row in the feed");
                }
                Ok::<_, std::io::Error>(round)
            })
            .await;
        runs += 1;
        assert_eq!(outcome.is_ok(), round != 1);
    }
    assert_eq!(runs, 3, "the loop went on");
    assert!(client.flush(WAIT).await);
    let check_ins: Vec<_> = sink
        .inner
        .envelopes()
        .iter()
        .flat_map(|e| e.items().cloned().collect::<Vec<_>>())
        .filter_map(|item| match item {
            EnvelopeItem::MonitorCheckIn(c) => Some(c),
            _ => None,
        })
        .collect();
    let statuses: Vec<_> = check_ins.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            MonitorCheckInStatus::InProgress,
            MonitorCheckInStatus::Ok,
            MonitorCheckInStatus::InProgress,
            MonitorCheckInStatus::Error,
            MonitorCheckInStatus::InProgress,
            MonitorCheckInStatus::Ok,
        ]
    );
    // Each run's two check-ins share an id; the end carries the duration and the config.
    assert_eq!(check_ins[0].check_in_id, check_ins[1].check_in_id);
    assert!(check_ins[1].duration.is_some());
    assert_eq!(check_ins[1].monitor_slug, "import");
    assert_eq!(check_ins[1].environment.as_deref(), Some("production"));
    assert_eq!(
        check_ins[1].monitor_config.as_ref().unwrap().checkin_margin,
        Some(2)
    );
    let events = sink.inner.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tags["monitor"], "import");
    assert_eq!(
        events[0].exception.values[0].value.as_deref(),
        Some("bad row in the feed")
    );
    // An invalid schedule is an error that says so, not a panic.
    let err = Monitor::new("x").crontab("every day").unwrap_err();
    assert!(err.to_string().contains("invalid crontab"), "{err}");
}
