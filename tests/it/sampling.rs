//! Sampling across a fleet and under overload: three services in one process, each with its
//! own client and sink, calling each other through the traced client, decide every trace with
//! one `sample_rand`, so the lowest-rate service's traces are complete in the others; an
//! upstream decision without `sample_rand` is honoured by the number made up for it; a sink
//! that cannot keep up lowers the trace rate, says so in the sampling context and in client
//! reports, and gets it back when it recovers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lighttrace::protocol::{Context, Envelope};
use lighttrace::{Client, MemorySink, Options, OutgoingLayer, SamplingContext, TrackingLayer};
use tower::{Layer, ServiceExt};

use crate::common::{self, Collector, Mode};

const WAIT: Duration = Duration::from_secs(10);

/// A service whose `/` calls `next` (if any) through the traced client and answers with the
/// `baggage` it sent.
fn service(options: Options, next: Option<Router>) -> (Router, Client) {
    let next = next.map(|router| OutgoingLayer::new().layer(router));
    let layer = TrackingLayer::with_options(options);
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let next = next.clone();
                async move {
                    let Some(next) = next else {
                        return "end".to_owned();
                    };
                    let res = next
                        .oneshot(
                            Request::get("http://next.internal/")
                                .body(Body::empty())
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    // Read to its end: the call's span ends with its body.
                    let body = res.into_body().collect().await.unwrap().to_bytes();
                    String::from_utf8(body.to_vec()).unwrap()
                }
            }),
        )
        .layer(layer);
    (app, client)
}

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .traces_sample_rate(1.0)
        .dsn(
            lighttrace::parse_dsn(&format!("https://{}@errors.example.com/1", common::KEY))
                .unwrap(),
        )
        .sink(sink.clone())
}

/// Every transaction's trace id, with its envelope's sampling context as JSON.
fn traces(sink: &MemorySink) -> BTreeMap<String, serde_json::Value> {
    sink.envelopes()
        .iter()
        .filter_map(|envelope: &Envelope| {
            let tx = envelope.items().find_map(|item| match item {
                lighttrace::protocol::EnvelopeItem::Transaction(tx) => Some(tx),
                _ => None,
            })?;
            let trace_id = match tx.contexts.get("trace") {
                Some(Context::Trace(t)) => t.trace_id.to_string(),
                other => panic!("{other:?}"),
            };
            let headers = serde_json::to_value(envelope.headers()).unwrap();
            Some((trace_id, headers["trace"].clone()))
        })
        .collect()
}

/// A service that answers with the `baggage` it was sent, to see what a caller propagates.
fn echo_baggage() -> Router {
    Router::new().route(
        "/",
        get(|headers: http::HeaderMap| async move {
            headers["baggage"].to_str().unwrap().to_owned()
        }),
    )
}

/// Calls `app` with an incoming trace and `sentry-` baggage entries; returns the value of
/// `entry` in the baggage it propagated.
async fn propagated(app: &Router, sentry_trace: &str, baggage: &str, entry: &str) -> String {
    let mut req = Request::get("/");
    if !sentry_trace.is_empty() {
        req = req.header("sentry-trace", sentry_trace);
    }
    if !baggage.is_empty() {
        req = req.header("baggage", baggage);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let sent = String::from_utf8(body.to_vec()).unwrap();
    let prefix = format!("sentry-{entry}=");
    sent.split(',')
        .find_map(|e| e.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {entry} in {sent}"))
        .to_owned()
}

#[tokio::test]
async fn three_services_at_one_half_and_a_quarter_keep_whole_traces() {
    // Trace ids (and so `sample_rand`s) are drawn on this thread: seeded, the run is the same
    // every time.
    fastrand::seed(26);
    let (sink_a, sink_b, sink_c) = (MemorySink::new(), MemorySink::new(), MemorySink::new());
    let seen_by_c = Arc::new(Mutex::new(Vec::new()));
    let seen = seen_by_c.clone();
    let (c, client_c) = service(
        options(&sink_c).traces_sampler(move |ctx: &SamplingContext<'_>| {
            seen.lock().unwrap().push(ctx.sample_rand());
            0.25
        }),
        None,
    );
    let (b, client_b) = service(options(&sink_b).traces_sampler(|_| 0.5), Some(c));
    let (a, client_a) = service(options(&sink_a).traces_sample_rate(1.0), Some(b));
    const REQUESTS: usize = 2_000;
    for _ in 0..REQUESTS {
        let res = a
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let _ = res.into_body().collect().await.unwrap();
    }
    for client in [&client_a, &client_b, &client_c] {
        assert!(client.flush(WAIT).await);
    }
    let (a, b, c) = (traces(&sink_a), traces(&sink_b), traces(&sink_c));
    let share = |kept: &BTreeMap<String, serde_json::Value>| kept.len() as f64 / REQUESTS as f64;
    assert_eq!(a.len(), REQUESTS);
    for (kept, rate) in [(&b, 0.5), (&c, 0.25)] {
        assert!(
            (share(kept) - rate).abs() <= 0.03,
            "{} kept at {rate}",
            share(kept)
        );
    }
    // No torn trace: what C kept, B and A kept; what B kept, A kept.
    let ids = |m: &BTreeMap<String, serde_json::Value>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert!(
        ids(&c).is_subset(&ids(&b)),
        "a trace C kept is missing in B"
    );
    assert!(
        ids(&b).is_subset(&ids(&a)),
        "a trace B kept is missing in A"
    );
    // One sample_rand per trace, from the head through baggage to the last service's sampler,
    // and the decisions follow it.
    let rand = |dsc: &serde_json::Value| dsc["sample_rand"].as_str().unwrap().to_owned();
    let mut c_saw: Vec<String> = seen_by_c
        .lock()
        .unwrap()
        .iter()
        .map(|r| format!("{r:.6}"))
        .collect();
    let mut a_sent: Vec<String> = a.values().map(rand).collect();
    c_saw.sort();
    a_sent.sort();
    assert_eq!(
        c_saw, a_sent,
        "C's sampler saw the sample_rand A drew, for every trace"
    );
    for (id, dsc) in &a {
        let value: f64 = rand(dsc).parse().unwrap();
        assert_eq!(b.contains_key(id), value < 0.5, "{id}: {value}");
        assert_eq!(c.contains_key(id), value < 0.25, "{id}: {value}");
        assert_eq!(dsc["sample_rate"], "1");
        assert_eq!(dsc["sampled"], "true");
        // B and C forward the head's sampling context unchanged.
        for downstream in [&b, &c] {
            if let Some(theirs) = downstream.get(id) {
                assert_eq!(theirs, dsc);
            }
        }
    }
}

#[tokio::test]
async fn an_upstream_decision_without_sample_rand_is_kept_by_the_one_made_up() {
    let sink = MemorySink::new();
    // A service that follows its caller's rate, deciding by sample_rand.
    let (app, client) = service(
        options(&sink).traces_sampler(|ctx| ctx.parent_sample_rate().unwrap_or(0.0) as f32),
        Some(echo_baggage()),
    );
    let mut kept = 0;
    for (i, flag) in ["1", "0"].iter().cycle().take(200).enumerate() {
        let trace_id = format!("{:032x}", 0x5eed_0000_u128 + i as u128);
        let baggage = format!(
            "sentry-trace_id={trace_id},sentry-public_key={},sentry-sample_rate=0.1,other=1",
            common::KEY
        );
        let sentry_trace = format!("{trace_id}-b0e6f15b45c36b12-{flag}");
        let rand: f64 = propagated(&app, &sentry_trace, &baggage, "sample_rand")
            .await
            .parse()
            .unwrap();
        // [0, 0.1) for a trace sampled upstream at 0.1, [0.1, 1) for one that was not: the
        // sampler's 0.1 then takes the same decision.
        assert_eq!(rand < 0.1, *flag == "1", "{rand} for -{flag}");
        kept += usize::from(*flag == "1");
    }
    assert!(client.flush(WAIT).await);
    assert_eq!(traces(&sink).len(), kept);
}

#[tokio::test]
async fn a_sample_rand_from_baggage_decides_and_travels_on_unchanged() {
    let sink = MemorySink::new();
    let (app, client) = service(options(&sink).traces_sampler(|_| 0.3), Some(echo_baggage()));
    let cases = [
        ("0.299999", true),
        ("0.300000", false),
        ("1.5", false),
        ("x", false),
    ];
    for (i, (rand, kept)) in cases.into_iter().enumerate() {
        let trace_id = format!("771a43a4192642f0b136d5159a50170{i}");
        let trace_id = trace_id.as_str();
        let baggage = format!(
            "sentry-trace_id={trace_id},sentry-public_key={},sentry-sample_rand={rand}",
            common::KEY
        );
        let sentry_trace = format!("{trace_id}-b0e6f15b45c36b12");
        let sent = propagated(&app, &sentry_trace, &baggage, "sample_rand").await;
        if rand.parse::<f64>().is_ok_and(|r| r < 1.0) {
            assert_eq!(sent, rand, "forwarded unchanged");
            assert!(client.flush(WAIT).await);
            assert_eq!(traces(&sink).contains_key(trace_id), kept, "{rand}");
        } else {
            // Invalid: replaced by one derived from the trace id, as for a trace without one
            // (so the same trace gets the same number again), and deciding at 0.3 as it says.
            let made_up: f64 = sent.parse().unwrap();
            assert!((0.0..1.0).contains(&made_up), "{sent}");
            let again = propagated(&app, &sentry_trace, &baggage, "sample_rand").await;
            assert_eq!(sent, again);
            assert!(client.flush(WAIT).await);
            assert_eq!(
                traces(&sink).contains_key(trace_id),
                made_up < 0.3,
                "{sent}"
            );
            assert!(!kept);
        }
    }
}

/// The rate a request's outgoing `baggage` carries.
async fn applied_rate(app: &Router) -> f64 {
    propagated(app, "", "", "sample_rate")
        .await
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_rate_limited_sink_lowers_the_rate_counts_backpressure_and_recovers() {
    // The first envelope is answered with a one-second limit on transactions.
    let collector = Collector::start(Mode::Accept(Some("1:transaction:organization"))).await;
    let options = Options::new()
        .dsn(collector.dsn())
        .release("shop@1.0.0")
        .traces_sample_rate(1.0)
        .backpressure_check_interval(Duration::from_millis(50));
    let layer = TrackingLayer::with_options(options);
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let mut headers = http::HeaderMap::new();
                lighttrace::inject_trace_headers("http://next.internal/", &mut headers);
                headers["baggage"].to_str().unwrap().to_owned()
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(layer);
    assert_eq!(applied_rate(&app).await, 1.0);
    assert!(client.flush(WAIT).await);
    assert_eq!(collector.count_items("transaction"), 1);
    collector.set_mode(Mode::Accept(None));
    // While the limit holds, every look at the sink halves the rate again.
    let mut rates = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !rates.contains(&0.25) && tokio::time::Instant::now() < deadline {
        rates.push(applied_rate(&app).await);
        assert!(client.flush(WAIT).await);
    }
    assert!(rates.contains(&0.5) && rates.contains(&0.25), "{rates:?}");
    // A caller's sampling context, forwarded while the rate is lowered, says the smaller of
    // the caller's rate and the lowered one: both had to keep the trace.
    let trace_id = "5eed0000000000000000000000000001";
    let baggage = format!(
        "sentry-trace_id={trace_id},sentry-public_key={},sentry-sample_rate=0.1,sentry-sample_rand=0.01",
        common::KEY
    );
    let sentry_trace = format!("{trace_id}-b0e6f15b45c36b12-1");
    let forwarded: f64 = propagated(&app, &sentry_trace, &baggage, "sample_rate")
        .await
        .parse()
        .unwrap();
    assert!(forwarded > 0.0 && forwarded <= 0.1, "{forwarded}");
    // An error is never downsampled.
    let res = app
        .clone()
        .oneshot(Request::get("/fail").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Once the limit is over, the first healthy look restores the rate.
    let deadline = tokio::time::Instant::now() + WAIT;
    while rates.last() != Some(&1.0) && tokio::time::Instant::now() < deadline {
        rates.push(applied_rate(&app).await);
        assert!(client.flush(WAIT).await);
    }
    assert_eq!(rates.last(), Some(&1.0), "recovered: {rates:?}");
    assert!(client.flush(WAIT).await);
    assert!(
        collector.count_items("event") >= 1,
        "the error went through"
    );
    assert!(collector.reported("backpressure", "transaction") > 0);
    assert_eq!(
        collector.reported("backpressure", "transaction"),
        collector.reported("backpressure", "span"),
        "each left-out transaction is one span too"
    );
    assert!(collector.reported("ratelimit_backoff", "transaction") > 0);
}
