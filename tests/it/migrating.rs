//! docs/migrating-from-sentry-tower.md's Rust code, compiled and run: every ```rust block of the
//! page appears here verbatim (between `// README:begin` and `// README:end`), and
//! `migration_blocks_are_all_compiled_here` fails when the two drift apart.

#[rustfmt::skip]
#[allow(dead_code, unused_imports, clippy::all)]
mod sentry_tower_setup {
// README:begin
use axum::{body::Body, http::Request, routing::get, Router};
use sentry::integrations::tower::{NewSentryLayer, SentryHttpLayer};

fn app() -> (Router, sentry::ClientInitGuard) {
    let guard = sentry::init(
        sentry::ClientOptions::new()
            .dsn("https://key@errors.example.com/1")
            .release("api@1.2.3")
            .environment("production")
            .traces_sample_rate(0.2)
            .send_default_pii(false),
    );
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .layer(SentryHttpLayer::new().enable_transaction())
        .layer(NewSentryLayer::<Request<Body>>::new_from_top())
        // sentry-tower does not catch panics: without this, a panic drops the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new());
    (app, guard) // keep the guard alive, or nothing is flushed at exit
}
// README:end
}

#[rustfmt::skip]
#[allow(dead_code, unused_imports, clippy::all)]
mod lighttrace_setup {
// README:begin
use axum::{routing::get, Router};
use lighttrace::{Options, TrackingLayer};

fn app() -> Result<(Router, lighttrace::Client), lighttrace::ConfigError> {
    let layer = TrackingLayer::with_options(
        Options::new()
            .dsn(lighttrace::parse_dsn("https://key@errors.example.com/1")?)
            .release("api@1.2.3")
            .environment("production")
            .traces_sample_rate(0.2)
            .send_default_pii(false),
    );
    let client = layer.client().clone(); // flush it at shutdown: client.close(timeout)
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .layer(layer); // panics are caught and answered 500, and reported
    Ok((app, client))
}
// README:end

    #[tokio::test]
    async fn the_lighttrace_setup_serves_and_is_enabled() {
        use tower::ServiceExt;
        let (app, client) = app().unwrap();
        assert!(client.is_enabled());
        assert_eq!(client.options().release_ref(), Some("api@1.2.3"));
        let req = Request::get("/users/7").body(axum::body::Body::empty()).unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), 200);
    }
    use axum::http::Request;
}

#[test]
fn migration_blocks_are_all_compiled_here() {
    let root = env!("CARGO_MANIFEST_DIR");
    let page =
        std::fs::read_to_string(format!("{root}/docs/migrating-from-sentry-tower.md")).unwrap();
    let here = std::fs::read_to_string(format!("{root}/tests/it/migrating.rs")).unwrap();
    let blocks = super::readme::rust_blocks(&page);
    let compiled = super::readme::regions(&here);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks, compiled,
        "the page's blocks and this file's regions differ"
    );
}
