//! gRPC through the layer: a real tonic server and client over TCP on 127.0.0.1, the service
//! `shop.Orders` (examples/shop). Each test asserts what the client saw and what the sink
//! received: names, ops and statuses from the gRPC status (head, or trailers at the stream's
//! end), error events for server errors only, panics answered as `INTERNAL`, streams measured
//! to their end, cancels and deadlines told apart, traces carried by the client layer.

use std::collections::BTreeMap;
use std::time::Duration;

use lighttrace::protocol::{Context, Event, SpanStatus, Transaction};
use lighttrace::{MemorySink, Options, OutgoingLayer, TrackingLayer};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common;
use crate::shop::{self, OrdersClient, OrdersServer};

const WAIT: Duration = Duration::from_secs(10);

fn options(sink: &MemorySink) -> Options {
    common::options_into(sink)
        .release("shop@1.0.0")
        .traces_sample_rate(1.0)
}

/// Serves `shop.Orders` behind `layer` on 127.0.0.1; the address to connect to.
async fn serve(layer: TrackingLayer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(OrdersServer)
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

async fn client(addr: &str) -> OrdersClient<tonic::transport::Channel> {
    OrdersClient::connect(addr.to_owned()).await.unwrap()
}

/// The first transaction named `name`, once it has arrived.
async fn transaction(sink: &MemorySink, name: &str) -> Transaction<'static> {
    loop {
        let seen = sink.transactions();
        if let Some(tx) = seen.iter().find(|t| t.name.as_deref() == Some(name)) {
            return tx.clone();
        }
        assert!(
            sink.wait_for_transactions(seen.len() + 1, WAIT).await,
            "no transaction {name} among {:?}",
            seen.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
        );
    }
}

fn trace(contexts: &BTreeMap<String, Context>) -> &lighttrace::protocol::TraceContext {
    match contexts.get("trace") {
        Some(Context::Trace(t)) => t,
        other => panic!("no trace context: {other:?}"),
    }
}

fn grpc_context<'a>(event: &'a Event<'_>) -> &'a BTreeMap<String, lighttrace::protocol::Value> {
    match event.contexts.get("grpc") {
        Some(Context::Other(map)) => map,
        other => panic!("no grpc context: {other:?}"),
    }
}

#[tokio::test]
async fn unary_calls_are_named_after_their_method_and_judged_by_their_grpc_status() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink));
    let client_handle = layer.client().clone();
    let addr = serve(layer).await;
    let mut orders = client(&addr).await;

    let receipt = orders.place(shop::order("book", 2)).await.unwrap();
    assert_eq!(receipt.get_ref().id, "order-book-2");
    let missing = orders.place(shop::order("unknown", 1)).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(client_handle.flush(WAIT).await);

    let txs = sink.transactions();
    assert_eq!(txs.len(), 2, "{txs:#?}");
    assert!(txs
        .iter()
        .all(|t| t.name.as_deref() == Some("shop.Orders/Place")));
    let statuses: Vec<_> = txs.iter().map(|t| trace(&t.contexts).status).collect();
    assert_eq!(statuses, [Some(SpanStatus::Ok), Some(SpanStatus::NotFound)]);
    let ok = trace(&txs[0].contexts);
    assert_eq!(ok.op.as_deref(), Some("grpc.server"));
    assert_eq!(ok.origin.as_deref(), Some("auto.grpc.lighttrace"));
    assert_eq!(ok.data["rpc.system"], "grpc");
    assert_eq!(ok.data["rpc.method"], "shop.Orders/Place");
    assert_eq!(ok.data["rpc.grpc.status_code"], 0);
    assert_eq!(
        trace(&txs[1].contexts).data["rpc.response.status_code"],
        "NOT_FOUND"
    );
    // NOT_FOUND is the client's mistake: no error event, and the session exited.
    assert!(sink.events().is_empty(), "{:#?}", sink.events());
    // Latency per RPC method, as per route.
    let latency = client_handle.latency();
    let place = latency
        .route("POST /shop.Orders/Place")
        .expect("the method's latency");
    assert_eq!((place.count, place.errors), (2, 0));
}

#[tokio::test]
async fn an_internal_status_is_an_event_with_its_message_and_source_error() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let failed = orders.place(shop::order("broken", 1)).await.unwrap_err();
    assert_eq!(failed.code(), Code::Internal);
    assert_eq!(failed.message(), "the order could not be stored");

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(
        event.message.as_deref(),
        Some("gRPC INTERNAL on shop.Orders/Place")
    );
    assert_eq!(event.transaction.as_deref(), Some("shop.Orders/Place"));
    let grpc = grpc_context(event);
    assert_eq!(grpc["status_code"], 13);
    assert_eq!(grpc["message"], "the order could not be stored");
    assert_eq!(trace(&event.contexts).op.as_deref(), Some("grpc.server"));
    // With tonic's Status in the response, its source error is the exception.
    #[cfg(feature = "tonic")]
    {
        let values: Vec<_> = event
            .exception
            .values
            .iter()
            .map(|e| e.value.clone())
            .collect();
        assert_eq!(
            values,
            [Some(
                "the orders database refused the connection".to_owned()
            )]
        );
    }
    let tx = transaction(&sink, "shop.Orders/Place").await;
    assert_eq!(trace(&tx.contexts).status, Some(SpanStatus::InternalError));
    assert_eq!(
        trace(&tx.contexts).trace_id,
        trace(&event.contexts).trace_id
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_is_a_fatal_event() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let failed = orders.place(shop::order("panic", 3)).await.unwrap_err();
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");
    // The server keeps serving.
    assert!(orders.place(shop::order("book", 1)).await.is_ok());

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, lighttrace::Level::Fatal);
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "panic");
    assert!(
        exception
            .value
            .as_deref()
            .unwrap_or("")
            .contains("index out of bounds"),
        "{exception:?}"
    );
    assert_eq!(event.transaction.as_deref(), Some("shop.Orders/Place"));
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let failed_tx = sink
        .transactions()
        .into_iter()
        .find(|t| trace(&t.contexts).status != Some(SpanStatus::Ok))
        .unwrap();
    let trace = trace(&failed_tx.contexts);
    assert_eq!(trace.status, Some(SpanStatus::InternalError));
    assert_eq!(trace.data["rpc.grpc.status_code"], 13);
}

#[tokio::test]
async fn a_stream_that_fails_after_three_messages_is_one_event_from_its_trailers() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let mut updates = orders
        .track(shop::order("lost", 1))
        .await
        .unwrap()
        .into_inner();
    let mut steps = Vec::new();
    let ended = loop {
        match updates.next().await {
            Some(Ok(update)) => steps.push(update.step),
            Some(Err(status)) => break status,
            None => panic!("the stream ended without its error"),
        }
    };
    assert_eq!(steps, [1, 2, 3]);
    assert_eq!(ended.code(), Code::Unavailable);

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(
        event.message.as_deref(),
        Some("gRPC UNAVAILABLE on shop.Orders/Track")
    );
    assert_eq!(
        grpc_context(event)["message"],
        "the carrier stopped answering"
    );
    let tx = transaction(&sink, "shop.Orders/Track").await;
    assert_eq!(trace(&tx.contexts).status, Some(SpanStatus::Unavailable));
    // Measured to the stream's end: three updates 10 ms apart, not the moment its head went out.
    let took = tx
        .timestamp
        .unwrap()
        .duration_since(tx.start_timestamp)
        .unwrap();
    assert!(took >= Duration::from_millis(30), "{took:?}");
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn a_client_that_cancels_mid_stream_makes_the_call_cancelled_not_failed() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let mut updates = orders
        .track(shop::order("endless", 1))
        .await
        .unwrap()
        .into_inner();
    for expected in 1..=2 {
        assert_eq!(updates.next().await.unwrap().unwrap().step, expected);
    }
    drop(updates);

    let tx = transaction(&sink, "shop.Orders/Track").await;
    let trace = trace(&tx.contexts);
    assert_eq!(trace.status, Some(SpanStatus::Cancelled));
    assert_eq!(trace.data["rpc.grpc.status_code"], 1);
    assert!(sink.events().is_empty(), "{:#?}", sink.events());
}

#[tokio::test]
async fn a_call_past_its_deadline_is_deadline_exceeded() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let mut slow = shop::order("slow", 1);
    slow.set_timeout(Duration::from_millis(200));
    let failed = orders.place(slow).await.unwrap_err();
    assert!(
        matches!(failed.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{failed:?}"
    );

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(
        event.message.as_deref(),
        Some("gRPC DEADLINE_EXCEEDED on shop.Orders/Place")
    );
    let tx = transaction(&sink, "shop.Orders/Place").await;
    assert_eq!(
        trace(&tx.contexts).status,
        Some(SpanStatus::DeadlineExceeded)
    );
}

#[tokio::test]
async fn a_client_stream_ends_with_its_answer_and_unknown_methods_share_one_name() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink));
    let client_handle = layer.client().clone();
    let addr = serve(layer).await;
    let mut orders = client(&addr).await;

    let basket = tokio_stream::iter(vec![
        shop::order("a", 1).into_inner(),
        shop::order("b", 2).into_inner(),
        shop::order("c", 3).into_inner(),
    ]);
    assert_eq!(orders.basket(basket).await.unwrap().get_ref().items, 6);
    let tx = transaction(&sink, "shop.Orders/Basket").await;
    assert_eq!(trace(&tx.contexts).status, Some(SpanStatus::Ok));

    // Two methods the service does not have: one shared name, one latency entry.
    let channel = tonic::transport::Endpoint::new(addr)
        .unwrap()
        .connect()
        .await
        .unwrap();
    for method in ["/shop.Orders/Refund", "/shop.Orders/Steal"] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static(method);
        let answer: Result<tonic::Response<shop::Receipt>, _> = grpc
            .unary(
                shop::order("x", 1),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await;
        assert_eq!(answer.unwrap_err().code(), Code::Unimplemented);
    }
    assert!(client_handle.flush(WAIT).await);
    let unmatched: Vec<_> = sink
        .transactions()
        .into_iter()
        .filter(|t| t.name.as_deref() == Some("POST <unmatched>"))
        .collect();
    assert_eq!(unmatched.len(), 2);
    assert_eq!(
        trace(&unmatched[0].contexts).status,
        Some(SpanStatus::Unimplemented)
    );
    assert!(!trace(&unmatched[0].contexts)
        .data
        .contains_key("rpc.method"));
    let latency = client_handle.latency();
    assert_eq!(latency.route("POST <unmatched>").unwrap().count, 2);
    assert!(latency.route("POST /shop.Orders/Steal").is_none());
    // UNIMPLEMENTED is a server error by OpenTelemetry's conventions: two events.
    assert_eq!(sink.events().len(), 2);
}

#[tokio::test]
async fn metadata_is_shown_as_headers_and_binary_metadata_never_raw() {
    let sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&sink))).await;
    let mut orders = client(&addr).await;

    let mut order = shop::order("book", 1);
    order
        .metadata_mut()
        .insert("x-tenant", "acme".parse().unwrap());
    order
        .metadata_mut()
        .insert("authorization", "Bearer s3cr3t".parse().unwrap());
    order.metadata_mut().insert_bin(
        "x-session-bin",
        tonic::metadata::MetadataValue::from_bytes(b"\x00secret-bytes"),
    );
    orders.place(order).await.unwrap();

    let tx = transaction(&sink, "shop.Orders/Place").await;
    let headers = &tx.request.as_ref().unwrap().headers;
    assert_eq!(headers["X-Tenant"], "acme");
    assert_eq!(headers["Authorization"], "[Filtered]");
    assert_eq!(headers["X-Session-Bin"], "[Filtered]");
    assert_eq!(headers["Content-Type"], "application/grpc");
}

#[tokio::test]
async fn a_grpc_client_behind_the_outgoing_layer_records_its_calls_and_carries_the_trace() {
    let server_sink = MemorySink::new();
    let addr = serve(TrackingLayer::with_options(options(&server_sink))).await;
    let channel = tonic::transport::Endpoint::new(addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let traced = tower::ServiceBuilder::new()
        .layer(OutgoingLayer::new())
        .service(channel);

    // An axum front end that places the order over gRPC.
    let sink = MemorySink::new();
    let app = axum::Router::new()
        .route(
            "/checkout/{item}",
            axum::routing::post(
                move |axum::extract::Path(item): axum::extract::Path<String>| {
                    let mut orders = OrdersClient::new(traced.clone());
                    async move {
                        match orders.place(shop::order(&item, 1)).await {
                            Ok(receipt) => receipt.into_inner().id,
                            Err(status) => status.code().to_string(),
                        }
                    }
                },
            ),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(front, app).await });
    let http = reqwest::Client::new();
    for item in ["book", "broken"] {
        let res = http
            .post(format!("http://{front_addr}/checkout/{item}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    let front_tx = transaction(&sink, "POST /checkout/{item}").await;
    let span = front_tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("grpc.client"))
        .expect("a grpc.client span");
    assert_eq!(span.description.as_deref(), Some("shop.Orders/Place"));
    assert_eq!(span.data["rpc.system"], "grpc");
    assert_eq!(span.data["rpc.grpc.status_code"], 0);
    assert_eq!(span.status, Some(SpanStatus::Ok));
    // The server's transaction continues the front end's trace, under the client span.
    let server_tx = transaction(&server_sink, "shop.Orders/Place").await;
    let server_trace = trace(&server_tx.contexts);
    assert_eq!(server_trace.trace_id, trace(&front_tx.contexts).trace_id);
    assert_eq!(server_trace.parent_span_id, Some(span.span_id));

    // The failed call's span has the status its trailers-only answer carried.
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let failed = sink
        .transactions()
        .into_iter()
        .flat_map(|t| t.spans)
        .find(|s| s.op.as_deref() == Some("grpc.client") && s.status != Some(SpanStatus::Ok))
        .expect("the failed call's span");
    assert_eq!(failed.status, Some(SpanStatus::InternalError));
    assert_eq!(failed.data["rpc.response.status_code"], "INTERNAL");
}

#[tokio::test]
async fn filters_and_latency_work_per_method() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        options(&sink).ignore_transactions(["shop.Orders/Basket", "/shop.Orders/Track"]),
    );
    let client_handle = layer.client().clone();
    let addr = serve(layer).await;
    let mut orders = client(&addr).await;

    orders.place(shop::order("book", 1)).await.unwrap();
    let basket = tokio_stream::iter(vec![shop::order("a", 1).into_inner()]);
    orders.basket(basket).await.unwrap();
    let mut updates = orders
        .track(shop::order("box", 1))
        .await
        .unwrap()
        .into_inner();
    while updates.next().await.is_some() {}
    assert!(client_handle.flush(WAIT).await);

    // Ignored by name and by route: only Place is a transaction; every method is counted.
    let names: Vec<_> = sink.transactions().into_iter().map(|t| t.name).collect();
    assert_eq!(names, [Some("shop.Orders/Place".to_owned())]);
    let latency = client_handle.latency();
    for route in [
        "POST /shop.Orders/Place",
        "POST /shop.Orders/Basket",
        "POST /shop.Orders/Track",
    ] {
        assert_eq!(latency.route(route).map(|r| r.count), Some(1), "{route}");
    }
}
