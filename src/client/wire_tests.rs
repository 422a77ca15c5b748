//! The direct writer and the struct path give the same envelope, field by field, on varied
//! requests: the same finished request goes through `Core::send_transaction` twice, once to
//! a sink that takes serialised envelopes and once to one that does not.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use sentry_types::protocol::v7::{
    DynamicSamplingContext, Envelope, EnvelopeItem, SpanId, SpanStatus, TraceId, User, Value,
};

use crate::client::pipeline::Core;
use crate::event::{
    BodyCapture, BodyKind, Finished, RequestSnapshot, ScopeData, SpanRecord, SpanText, TraceIds,
};
use crate::options::Options;
use crate::sink::{MemorySink, Sink};

/// Takes typed envelopes only: the struct path.
#[derive(Clone, Default)]
struct Typed(Arc<Mutex<Vec<Envelope>>>);

impl Sink for Typed {
    fn send(&self, envelope: Envelope) {
        self.0.lock().unwrap().push(envelope);
    }
}

fn core(options: Options, sink: Arc<dyn Sink>) -> Core {
    // Transactions exist only with tracing on.
    let options = match options.tracing_enabled() {
        true => options,
        false => options.traces_sample_rate(1.0),
    };
    Core {
        direct: crate::wire::Writer::new(crate::client::pipeline::wire_setup(&options)),
        dsc_template: crate::client::pipeline::dsc_template(&options),
        #[cfg(feature = "tracing")]
        log_attributes: Vec::new(),
        options,
        sink: Some(sink),
        unsampled: Default::default(),
        backpressure: super::backpressure::Backpressure::new(false, std::time::Duration::MAX),
        sessions: None,
        latency: None,
        #[cfg(feature = "tracing")]
        logs: Default::default(),
    }
}

/// The envelope's header and its one item's payload as JSON, with the parts that differ
/// between two runs by design (the event id and `sent_at`) taken out.
fn normalised(bytes: &[u8]) -> (serde_json::Value, serde_json::Value) {
    let mut lines = bytes.splitn(3, |b| *b == b'\n');
    let mut header: serde_json::Value = serde_json::from_slice(lines.next().unwrap()).unwrap();
    let item: serde_json::Value = serde_json::from_slice(lines.next().unwrap()).unwrap();
    let rest = lines.next().unwrap();
    let length = item["length"].as_u64().unwrap() as usize;
    assert_eq!(item["type"], "transaction");
    assert_eq!(
        &rest[length..],
        b"\n",
        "the payload is `length` bytes and a newline"
    );
    let mut payload: serde_json::Value = serde_json::from_slice(&rest[..length]).unwrap();
    let header_map = header.as_object_mut().unwrap();
    assert!(header_map.remove("sent_at").unwrap().is_string());
    let id = header_map.remove("event_id").unwrap();
    let payload_id = payload.as_object_mut().unwrap().remove("event_id").unwrap();
    assert_eq!(
        id.as_str().unwrap().replace('-', ""),
        payload_id.as_str().unwrap()
    );
    (header, payload)
}

/// Both paths for one finished request: (direct, struct) normalised.
fn both(
    options: impl Fn() -> Options,
    finished: &Finished,
) -> [(serde_json::Value, serde_json::Value); 2] {
    let memory = MemorySink::new();
    core(options(), Arc::new(memory.clone())).send_transaction(finished);
    let direct = memory.serialized();
    assert_eq!(direct.len(), 1);
    // The bytes parse back into the protocol's transaction.
    let parsed = Envelope::from_slice(&direct[0]).unwrap();
    assert!(matches!(
        parsed.items().next(),
        Some(EnvelopeItem::Transaction(_))
    ));

    let typed = Typed::default();
    core(options(), Arc::new(typed.clone())).send_transaction(finished);
    let envelopes = typed.0.lock().unwrap();
    assert_eq!(envelopes.len(), 1);
    let mut via_struct = Vec::new();
    envelopes[0].to_writer(&mut via_struct).unwrap();
    let [mut direct_json, mut struct_json] = [normalised(&direct[0]), normalised(&via_struct)];
    same_starts(&mut direct_json.1, &mut struct_json.1);
    [direct_json, struct_json]
}

/// The direct writer gives `start_timestamp` in RFC 3339 (as `timestamp`), the struct path as
/// float seconds: the same instants, to the float's precision, are taken out of both.
fn same_starts(direct: &mut serde_json::Value, via_struct: &mut serde_json::Value) {
    let instants = |payload: &serde_json::Value| {
        let tx: sentry_types::protocol::v7::Transaction<'static> =
            serde_json::from_value(payload.clone()).unwrap();
        let mut all = vec![tx.start_timestamp];
        all.extend(tx.spans.iter().map(|s| s.start_timestamp));
        all
    };
    let (a, b) = (instants(direct), instants(via_struct));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        let apart = a.duration_since(*b).unwrap_or_else(|e| e.duration());
        assert!(apart <= Duration::from_micros(1), "start {a:?} vs {b:?}");
    }
    assert!(
        direct["start_timestamp"].is_string(),
        "RFC 3339 from the direct writer"
    );
    for payload in [direct, via_struct] {
        payload["start_timestamp"].take();
        for span in payload["spans"].as_array_mut().into_iter().flatten() {
            span["start_timestamp"].take();
        }
    }
}

/// Names the first differing field, for a readable failure.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let path = format!("{at}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, &path) {
                            return Some(d);
                        }
                    }
                    (p, q) => return Some(format!("{path}: direct {p:?}, struct {q:?}")),
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some(format!("{at}: direct {a}, struct {b}")),
    }
}

fn assert_same(options: impl Fn() -> Options, finished: &Finished) -> Result<(), TestCaseError> {
    let [(h1, p1), (h2, p2)] = both(options, finished);
    prop_assert!(h1 == h2, "header {:?}", first_difference(&h1, &h2, ""));
    prop_assert!(p1 == p2, "payload {:?}", first_difference(&p1, &p2, ""));
    Ok(())
}

/// A time with whole seconds, whole milliseconds or any nanoseconds.
fn instant() -> impl Strategy<Value = SystemTime> {
    (
        1_500_000_000u64..2_500_000_000,
        prop_oneof![Just(0u32), 0..1000u32, 0..1_000_000_000u32],
    )
        .prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n % 1_000_000_000))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Bearer abc.def".to_owned()),
        Just("4111 1111 1111 1111".to_owned()),
        Just("a=1&token=xyz".to_owned()),
        Just("session=s3cr3t; theme=dark".to_owned()),
        Just("quote \" back \\ nl \n é ✓ \u{1}".to_owned()),
        "[a-zA-Z0-9 _./-]{0,12}",
    ]
}

fn header() -> impl Strategy<Value = (HeaderName, HeaderValue)> {
    let name = prop::sample::select(vec![
        "authorization",
        "cookie",
        "x-forwarded-for",
        "x-real-ip",
        "content-type",
        "x-custom",
        "user-agent",
        "x-api-key",
        "referer",
        "accept",
    ]);
    (name, text(), any::<bool>()).prop_filter_map("a valid header", |(name, value, sensitive)| {
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(sensitive && name == "x-custom");
        Some((HeaderName::from_static(name), value))
    })
}

fn span(trace_parent: SpanId) -> impl Strategy<Value = SpanRecord> {
    let data = prop::collection::vec(
        (
            prop::sample::select(vec!["db.system", "password", "id", "query", "id"]),
            prop_oneof![
                text().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                Just(Value::Bool(true)),
                Just(serde_json::json!({"token": "t", "n": [1, "Bearer x"]})),
                Just(Value::Null),
            ],
        ),
        0..4,
    );
    (text(), text(), instant(), 0..5_000_000u64, data, 0..4u8).prop_map(
        move |(op, description, start, micros, data, kind)| SpanRecord {
            span_id: crate::event::new_span_id(),
            parent: trace_parent,
            op: match kind {
                0 => SpanText::Borrowed("db.query"),
                1 => SpanText::Path("app::repo", "load"),
                3 => SpanText::Borrowed("db"),
                _ => SpanText::Owned(op),
            },
            // A database span's facts, written as data beside (and under) the span's own.
            db: (kind == 3).then(|| crate::event::DbFacts {
                system: crate::event::DbSystem::Known("sqlite"),
                rows_returned: Some(micros % 7),
                rows_affected: (micros % 2 == 0).then_some(1),
            }),
            description: SpanText::Owned(description),
            start,
            end: start + Duration::from_micros(micros),
            status: SpanStatus::Ok,
            data: data
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect(),
        },
    )
}

/// What handlers set: tags, extra, whether a user, spans.
type Scope = (
    Vec<(String, String)>,
    Vec<(String, Value)>,
    bool,
    Vec<SpanRecord>,
);

#[derive(Debug, Clone)]
struct Case {
    path: String,
    query: Option<String>,
    host: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(BodyKind, String)>,
    route: Option<String>,
    status: u16,
    started: SystemTime,
    took: Duration,
    parent: Option<bool>,
    upstream: bool,
    data: Option<Scope>,
    pii: bool,
    release: bool,
    dsn: bool,
    tags: Vec<(String, String)>,
    /// Which scrub rules (see `Case::options`).
    rules: u8,
    /// A gRPC call with its status, and how the body ended.
    ending: (bool, Option<i32>, Option<SpanStatus>),
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            "(/[a-z0-9._%~-]{0,6}){1,4}",
            prop::option::of("[a-z]{1,4}=[a-zA-Z0-9%]{0,6}(&(token|page)=[a-z0-9]{0,4}){0,2}"),
            prop::option::of(prop::sample::select(vec![
                "api.example.com".to_owned(),
                "Example.COM:8080".to_owned(),
                "bob:pw@db.internal".to_owned(),
                "127.0.0.1:3000".to_owned(),
            ])),
            prop::collection::vec(header(), 0..7),
            prop::option::of((
                prop::sample::select(vec![BodyKind::Json, BodyKind::Form, BodyKind::Text]),
                prop_oneof![
                    Just(
                        r#"{"user":"ann","password":"p","n":411111111111111141111111}"#.to_owned()
                    ),
                    Just("a=1&secret=s".to_owned()),
                    text(),
                ],
            )),
            prop::option::of("(GET|POST) /[a-z{}_/]{0,12}"),
        ),
        (
            prop::sample::select(vec![200u16, 201, 404, 429, 499, 500, 503]),
            instant(),
            (0..2_000_000u64).prop_map(Duration::from_micros),
            prop::option::of(any::<bool>()),
            any::<bool>(),
            prop::option::of((
                prop::collection::vec(("[a-z]{1,5}", text()), 0..3),
                prop::collection::vec(
                    ("[a-z]{1,5}|password|api_key", text().prop_map(Value::from)),
                    0..3,
                ),
                any::<bool>(),
                prop::collection::vec(span(SpanId::default()), 0..5),
            )),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            prop::collection::vec(("[a-z]{1,5}", "[a-z0-9]{0,5}"), 0..3),
            0..4u8,
            (
                any::<bool>(),
                prop::option::of(-1..18i32),
                prop::option::of(prop::sample::select(vec![
                    SpanStatus::Cancelled,
                    SpanStatus::InternalError,
                ])),
            ),
        ),
    )
        .prop_map(
            |(
                (path, query, host, headers, body, route),
                (
                    status,
                    started,
                    took,
                    parent,
                    upstream,
                    data,
                    (pii, release, dsn),
                    tags,
                    rules,
                    ending,
                ),
            )| Case {
                path,
                query,
                host,
                headers,
                body,
                route,
                status,
                started,
                took,
                parent,
                upstream,
                data,
                pii,
                release,
                dsn,
                tags,
                rules,
                ending,
            },
        )
}

impl Case {
    fn options(&self) -> Options {
        let mut options = Options::new().send_default_pii(self.pii);
        if self.release {
            options = options
                .release("api@1.0.0")
                .environment("prod \"eu\"")
                .server_name("web-1");
        }
        if self.dsn {
            options = options.dsn(
                "https://0123456789abcdef0123456789abcdef@o42.ingest.example.com/7"
                    .parse()
                    .unwrap(),
            );
        }
        for (k, v) in &self.tags {
            options = options.tag(k.clone(), v.clone());
        }
        // Rules on address and common headers, removed defaults, added keys, no card check.
        let rules = crate::ScrubRules::new();
        options.scrub_rules(match self.rules {
            1 => rules
                .sensitive_header("forwarded")
                .sensitive_header("Referer")
                .sensitive_header("x-real"),
            2 => rules
                .allow_header("auth")
                .allow_key("token")
                .sensitive_key("N"),
            3 => rules
                .credit_cards(false)
                .sensitive_header("")
                .allow_key("password"),
            _ => rules,
        })
    }

    fn finished(&self) -> Option<Finished> {
        let uri = match &self.host {
            Some(host) if host.contains('@') => format!("http://{host}{}", self.path),
            _ => self.path.clone(),
        };
        let uri = match &self.query {
            Some(q) => format!("{uri}?{q}"),
            None => uri,
        };
        let mut headers = self.headers.clone();
        if let Some(host) = self.host.as_ref().filter(|h| !h.contains('@')) {
            headers.push((http::header::HOST, HeaderValue::from_str(host).ok()?));
        }
        let body = self.body.as_ref().map(|(kind, text)| {
            let capture = BodyCapture::new(*kind, 1024);
            capture.record(&[text.as_bytes()], text.len());
            Arc::new(capture)
        });
        let request = RequestSnapshot {
            method: if self.body.is_some() {
                Method::POST
            } else {
                Method::GET
            },
            uri: uri.parse().ok()?,
            headers,
            // A gRPC call's method is its route.
            route: self
                .ending
                .0
                .then(|| crate::event::Route::Grpc(self.path.parse().unwrap())),
            name: self.route.clone(),
            grpc: self.ending.0,
            started: self.started,
            body,
            client_ip: None,
        };
        let mut trace = TraceIds::new_root(true, 0.25);
        if self.parent.is_some() {
            trace.parent_span_id = Some(crate::event::new_span_id());
        }
        let upstream = self.upstream.then(|| {
            Box::new(
                DynamicSamplingContext::new()
                    .with_trace_id(TraceId::default())
                    .with_public_key("upstream".into())
                    .with_sample_rate(0.5)
                    .with_sampled(true),
            )
        });
        let data = self.data.as_ref().map(|(tags, extra, user, spans)| {
            let mut data = ScopeData {
                tags: tags.iter().cloned().collect(),
                extra: extra.iter().cloned().collect::<BTreeMap<_, _>>(),
                ..Default::default()
            };
            if *user {
                let mut other = BTreeMap::new();
                other.insert("password".to_owned(), Value::from("p"));
                other.insert("plan".to_owned(), Value::from("pro"));
                data.user = Some(Box::new(User {
                    id: Some("7".into()),
                    email: Some("ann@example.com".into()),
                    other,
                    ..Default::default()
                }));
            }
            data.spans = spans
                .iter()
                .map(|s| SpanRecord {
                    parent: trace.span_id,
                    ..s.clone()
                })
                .collect();
            Box::new(data)
        });
        Some(Finished {
            request,
            trace,
            upstream_dsc: upstream,
            data,
            status: self.status,
            finished: self.started + self.took,
            failure: None,
            grpc_status: self.ending.1,
            body_status: self.ending.2,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn the_direct_writer_equals_the_struct_path(case in case()) {
        let Some(finished) = case.finished() else { return Ok(()); };
        assert_same(|| case.options(), &finished)?;
    }
}

/// Rules on an address header and on a common one: both filtered, both ways, with PII on.
#[test]
fn rules_on_address_and_common_headers_hold_both_ways() {
    let case = Case {
        path: "/users/7".into(),
        query: None,
        host: Some("api.example.com".into()),
        headers: vec![
            (
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_static("203.0.113.7"),
            ),
            (
                http::header::REFERER,
                HeaderValue::from_static("https://example.com/private"),
            ),
            (http::header::USER_AGENT, HeaderValue::from_static("curl/8")),
        ],
        body: None,
        route: Some("GET /users/{id}".into()),
        status: 200,
        started: UNIX_EPOCH + Duration::new(1_800_000_000, 5),
        took: Duration::from_micros(700),
        parent: None,
        upstream: false,
        data: None,
        pii: true,
        release: false,
        dsn: true,
        tags: vec![],
        rules: 0,
        ending: (false, None, None),
    };
    let finished = case.finished().unwrap();
    let options = || {
        case.options().scrub_rules(
            crate::ScrubRules::new()
                .sensitive_header("forwarded")
                .sensitive_header("referer"),
        )
    };
    let [(header, payload), other] = both(options, &finished);
    assert_eq!((header, payload.clone()), other);
    let headers = &payload["request"]["headers"];
    assert_eq!(headers["X-Forwarded-For"], "[Filtered]");
    assert_eq!(headers["Referer"], "[Filtered]");
    assert_eq!(headers["User-Agent"], "curl/8");
}

#[test]
fn a_plain_traced_get_is_the_same_both_ways() {
    let case = Case {
        path: "/users/7".into(),
        query: Some("page=2&token=abc".into()),
        host: Some("api.example.com".into()),
        headers: vec![
            (http::header::USER_AGENT, HeaderValue::from_static("curl/8")),
            (
                http::header::AUTHORIZATION,
                HeaderValue::from_static("Bearer x"),
            ),
            (
                http::header::COOKIE,
                HeaderValue::from_static("session=1; theme=dark"),
            ),
        ],
        body: None,
        route: Some("GET /users/{id}".into()),
        status: 200,
        started: UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
        took: Duration::from_micros(1500),
        parent: None,
        upstream: false,
        data: None,
        pii: true,
        release: true,
        dsn: true,
        tags: vec![("region".into(), "eu".into())],
        rules: 0,
        ending: (false, None, None),
    };
    let finished = case.finished().unwrap();
    let [(header, payload), other] = both(|| case.options(), &finished);
    assert_eq!((header.clone(), payload.clone()), other);
    assert_eq!(payload["transaction"], "GET /users/{id}");
    assert_eq!(payload["request"]["headers"]["Authorization"], "[Filtered]");
    assert_eq!(
        payload["request"]["query_string"],
        "page=2&token=[Filtered]"
    );
    assert_eq!(
        header["trace"]["public_key"],
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(header["trace"]["org_id"], "42");
}

#[test]
fn a_grpc_call_is_the_same_both_ways() {
    let call = |ending| Case {
        path: "/shop.Orders/Place".into(),
        query: None,
        host: None,
        headers: vec![(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        )],
        body: None,
        route: Some("shop.Orders/Place".into()),
        status: 200,
        started: UNIX_EPOCH + Duration::new(1_800_000_000, 0),
        took: Duration::from_micros(900),
        parent: None,
        upstream: false,
        data: None,
        pii: false,
        release: false,
        dsn: true,
        tags: vec![],
        rules: 0,
        ending,
    };
    let trace_of = |ending| {
        let case = call(ending);
        let finished = case.finished().unwrap();
        let [(header, payload), other] = both(|| case.options(), &finished);
        assert_eq!((header, payload.clone()), other);
        assert_eq!(payload["transaction"], "shop.Orders/Place");
        payload["contexts"]["trace"].clone()
    };
    let failed = trace_of((true, Some(13), None));
    assert_eq!(failed["op"], "grpc.server");
    assert_eq!(failed["origin"], "auto.grpc.lighttrace");
    assert_eq!(failed["status"], "internal_error");
    assert_eq!(failed["data"]["rpc.system"], "grpc");
    assert_eq!(failed["data"]["rpc.method"], "shop.Orders/Place");
    assert_eq!(failed["data"]["rpc.grpc.status_code"], 13);
    assert_eq!(failed["data"]["rpc.response.status_code"], "INTERNAL");
    let not_found = trace_of((true, Some(5), None));
    assert_eq!(not_found["status"], "not_found");
    // A stream the client walked away from is cancelled, whatever came before.
    let cut = trace_of((true, None, Some(SpanStatus::Cancelled)));
    assert_eq!(cut["status"], "cancelled");
    assert!(cut["data"].get("rpc.grpc.status_code").is_none());
    let http = trace_of((false, None, Some(SpanStatus::InternalError)));
    assert_eq!(
        (&http["op"], &http["status"]),
        (&"http.server".into(), &"internal_error".into())
    );
    assert_eq!(http["data"]["http.response.status_code"], 200);
}

#[test]
fn repeated_headers_are_joined_both_ways() {
    let mut case_headers = vec![
        (http::header::ACCEPT, HeaderValue::from_static("a/b")),
        (http::header::ACCEPT, HeaderValue::from_static("c/d")),
    ];
    case_headers.push((http::header::HOST, HeaderValue::from_static("h")));
    let finished = Finished {
        request: RequestSnapshot {
            name: None,
            grpc: false,
            method: Method::GET,
            uri: "/x".parse().unwrap(),
            headers: case_headers,
            route: None,
            started: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            body: None,
            client_ip: None,
        },
        trace: TraceIds::new_root(true, 1.0),
        upstream_dsc: None,
        data: None,
        status: 200,
        finished: UNIX_EPOCH + Duration::from_secs(1_800_000_001),
        failure: None,
        grpc_status: None,
        body_status: None,
    };
    let [(_, payload), (_, other)] = both(Options::new, &finished);
    assert_eq!(payload, other);
    assert_eq!(payload["request"]["headers"]["Accept"], "a/b, c/d");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An event's `request` interface, built scrubbed with the names' table, is the struct the
    /// event scrub pass made of the unscrubbed interface; twice, so the second build reads
    /// the table (and the thread's last URL) the first one filled.
    #[test]
    fn the_event_interface_equals_the_scrubbed_struct(case in case()) {
        let Some(finished) = case.finished() else { return Ok(()); };
        let options = case.options();
        let writer = crate::wire::Writer::new(crate::client::pipeline::wire_setup(&options));
        let mut expected = finished.request.to_request_interface();
        crate::scrub::scrub_request(
            &mut expected,
            options.send_default_pii,
            &options.scrub_rules,
        );
        for _ in 0..2 {
            let built = writer.request_interface(&finished.request);
            prop_assert_eq!(&built, &expected);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A transaction that went through a `before_send_transaction` hook unchanged is written
    /// as the direct writer writes it, start times in RFC 3339 included (they were float
    /// seconds, which Spotlight reads at millisecond precision).
    #[test]
    fn a_hooked_transaction_reads_as_the_direct_one(case in case()) {
        let Some(finished) = case.finished() else { return Ok(()); };
        let write = |hooked: bool| {
            let memory = MemorySink::new();
            let mut options = case.options();
            if hooked {
                options = options.before_send_transaction(Some);
            }
            core(options, Arc::new(memory.clone())).send_transaction(&finished);
            let out = memory.serialized();
            assert_eq!(out.len(), 1);
            normalised(&out[0])
        };
        let ((h1, p1), (h2, p2)) = (write(false), write(true));
        prop_assert!(h1 == h2, "header {:?}", first_difference(&h1, &h2, ""));
        prop_assert!(p1 == p2, "payload {:?}", first_difference(&p1, &p2, ""));
        prop_assert!(p2["start_timestamp"].is_string());
    }
}
