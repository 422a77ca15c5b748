//! Free functions outside any request, and configuration from the environment. One test per
//! concern that touches process-wide state, in its own binary so nothing else sees it.

use std::time::Duration;

use lighttrace::{Breadcrumb, Client, Level, MemorySink, Options};

#[tokio::test]
async fn outside_requests_the_global_client_is_used_or_nothing_happens() {
    // No global client yet: nothing happens, nothing panics.
    assert_eq!(
        lighttrace::capture_message("nobody listens", Level::Error),
        None
    );
    lighttrace::add_breadcrumb(Breadcrumb::default());
    lighttrace::set_tag("ignored", "yes");

    // Environment: read when asked, and a bad DSN names the variable.
    std::env::set_var(
        "SENTRY_DSN",
        "https://0123456789abcdef0123456789abcdef@errors.example.com/5",
    );
    std::env::set_var("SENTRY_RELEASE", "env-release@2");
    std::env::set_var("SENTRY_ENVIRONMENT", "staging");
    let options = Options::from_env().unwrap();
    assert_eq!(options.dsn_ref().unwrap().project_id().to_string(), "5");
    assert_eq!(options.release_ref(), Some("env-release@2"));
    assert_eq!(options.environment_ref(), Some("staging"));
    // Code wins over the environment.
    assert_eq!(
        Options::from_env().unwrap().release("code@1").release_ref(),
        Some("code@1")
    );
    std::env::set_var(
        "LIGHTTRACE_DSN",
        "https://0123456789abcdef0123456789abcdef@lighttrace.example.com/9",
    );
    assert_eq!(
        Options::from_env()
            .unwrap()
            .dsn_ref()
            .unwrap()
            .project_id()
            .to_string(),
        "9"
    );
    std::env::set_var("LIGHTTRACE_DSN", "garbage");
    let err = Options::from_env().unwrap_err().to_string();
    assert!(err.contains("LIGHTTRACE_DSN"), "{err}");
    std::env::remove_var("LIGHTTRACE_DSN");
    std::env::remove_var("SENTRY_DSN");
    // Tracing is off until a rate is set, in code or in SENTRY_TRACES_SAMPLE_RATE.
    assert!(!Options::from_env().unwrap().tracing_enabled());
    std::env::set_var("SENTRY_TRACES_SAMPLE_RATE", "0.25");
    assert!(Options::from_env().unwrap().tracing_enabled());
    std::env::set_var("SENTRY_TRACES_SAMPLE_RATE", "lots");
    let err = Options::from_env().unwrap_err().to_string();
    assert!(
        err.contains("SENTRY_TRACES_SAMPLE_RATE") && err.contains("lots"),
        "{err}"
    );
    std::env::remove_var("SENTRY_TRACES_SAMPLE_RATE");

    let sink = MemorySink::new();
    let client = Client::new(Options::from_env().unwrap().sink(sink.clone()));
    client.install_global();
    lighttrace::set_user(Some(lighttrace::User {
        id: Some("cron".into()),
        ..Default::default()
    }));
    lighttrace::add_breadcrumb(Breadcrumb {
        message: Some("nightly job started".into()),
        ..Default::default()
    });
    let err = std::io::Error::other("disk full");
    let id = lighttrace::capture_error(&err).expect("sent through the global client");
    // A background thread reaches the same client.
    std::thread::spawn(|| lighttrace::capture_message("from a thread", Level::Warning))
        .join()
        .unwrap()
        .expect("sent");

    assert!(sink.wait_for_events(2, Duration::from_secs(5)).await);
    let events = sink.events();
    assert_eq!(events[0].event_id, id);
    assert_eq!(events[0].exception.values[0].ty, "io::Error");
    assert_eq!(events[0].user.as_ref().unwrap().id.as_deref(), Some("cron"));
    assert_eq!(
        events[0].breadcrumbs.values[0].message.as_deref(),
        Some("nightly job started")
    );
    assert_eq!(events[0].release.as_deref(), Some("env-release@2"));
    assert_eq!(events[0].environment.as_deref(), Some("staging"));
    assert_eq!(events[1].level, Level::Warning);
}
