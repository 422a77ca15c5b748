//! A corpus of secrets sent through a real axum app whose handler then fails: the secret's bytes
//! must appear nowhere in the envelope, while the non-secret field beside it must still be there.
//! PII is on (`send_default_pii`), the least strict setting, so cookies and IPs are sent too.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::any;
use axum::Router;
use http::Request;
use lighttrace::{HandlerError, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

/// Where a secret travels.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// A header with this name.
    Header(&'static str),
    /// A cookie with this name.
    Cookie(&'static str),
    /// A query parameter with this name.
    Query(&'static str),
    /// A JSON body, `{}` replaced by the secret.
    Json(&'static str),
    /// A form body, `{}` replaced by the secret.
    Form(&'static str),
    /// A text body, `{}` replaced by the secret.
    Text(&'static str),
    /// The URL's userinfo password.
    Userinfo,
}

use Place::*;

/// (place, secret). Card numbers are test numbers that pass the Luhn check.
const CORPUS: &[(Place, &str)] = &[
    (Header("authorization"), "Bearer hdr-a1b2c3d4e5"),
    (Header("proxy-authorization"), "Basic cHJveHk6c2VjcmV0MQ=="),
    (Header("x-api-key"), "hdr-apikey-77f1"),
    (Header("api-key"), "hdr-apikey-88e2"),
    (Header("x-auth-token"), "hdr-authtok-19ab"),
    (Header("x-access-token"), "hdr-access-2c3d"),
    (Header("x-client-secret"), "hdr-secret-3e4f"),
    (Header("x-db-password"), "hdr-password-4a5b"),
    (Header("x-csrf-token"), "hdr-csrf-5c6d"),
    (Header("x-session-id"), "hdr-session-6e7f"),
    (
        Header("x-jwt-assertion"),
        "eyJhbGciOiJIUzI1NiJ9.hdrjwt.sig8a9b",
    ),
    (Header("private-token"), "hdr-private-9c0d"),
    (Header("x-note"), "Bearer hdr-bearer-in-note-0e1f"),
    (Header("x-card"), "4111 1111 1111 1111"),
    (Cookie("sessionid"), "ck-sessionid-1a2b"),
    (Cookie("session"), "ck-session-2b3c"),
    (Cookie("__session"), "ck-dunder-3c4d"),
    (Cookie("user_session"), "ck-usersession-4d5e"),
    (Cookie("PHPSESSID"), "ck-phpsessid-5e6f"),
    (Cookie("csrftoken"), "ck-csrftoken-6f7a"),
    (Cookie("_csrf"), "ck-csrf-7a8b"),
    (Cookie("XSRF-TOKEN"), "ck-xsrf-8b9c"),
    (Cookie("auth_token"), "ck-authtoken-9c0d"),
    (Cookie("remember_token"), "ck-remember-0d1e"),
    (Query("password"), "q-password-1f2a"),
    (Query("secret"), "q-secret-2a3b"),
    (Query("api_key"), "q-apikey-3b4c"),
    (Query("apikey"), "q-apikey2-4c5d"),
    (Query("access_token"), "q-accesstoken-5d6e"),
    (Query("auth"), "q-auth-6e7f"),
    (Query("credentials"), "q-credentials-7f8a"),
    (Query("mysql_pwd"), "q-mysqlpwd-8a9b"),
    (Query("private_key"), "q-privatekey-9b0c"),
    (Query("otp"), "q-otp-917364"),
    (Query("two_factor"), "q-twofactor-0c1d"),
    (Query("note"), "Bearer q-bearer-1d2e"),
    (Query("cc"), "5500000000000004"),
    (
        Json(r#"{"user":{"name":"canary","password":"{}"}}"#),
        "j-password-2e3f",
    ),
    (
        Json(r#"{"a":{"b":{"c":{"d":{"api_key":"{}"}}}},"canary":1}"#),
        "j-deep-apikey-3f4a",
    ),
    (
        Json(r#"{"items":[{"token":"{}"},{"name":"canary"}]}"#),
        "j-token-in-array-4a5b",
    ),
    (
        Json(r#"{"client_secret":"{}","client_id":"canary"}"#),
        "j-clientsecret-5b6c",
    ),
    (
        Json(r#"{"privateKey":"{}","kid":"canary"}"#),
        "j-privatekey-6c7d",
    ),
    (
        Json(r#"{"credentials":{"user":"canary","pass":"{}"}}"#),
        "j-credentials-7d8e",
    ),
    (Json(r#"{"otp":"{}","step":"canary"}"#), "j-otp-8e9f"),
    (
        Json(r#"{"note":"{}","who":"canary"}"#),
        "Bearer j-bearer-9f0a",
    ),
    (
        Json(r#"{"payment":{"pan":"{}","currency":"canary"}}"#),
        "3782 822463 10005",
    ),
    (Form("user=canary&password={}"), "f-password-0a1b"),
    (Form("user=canary&token={}"), "f-token-1b2c"),
    (Form("secret={}&user=canary"), "f-secret-2c3d"),
    (Form("api_key={}&user=canary"), "f-apikey-3d4e"),
    (Form("otp={}&user=canary"), "f-otp-4e5f"),
    (Form("user=canary&number={}"), "6011111111111117"),
    (
        Text("canary log line; Authorization: {}"),
        "Bearer t-bearer-5f6a",
    ),
    (Text("canary card on file {}"), "4012888888881881"),
    (Userinfo, "u-password-6a7b"),
    (Userinfo, "u-password-7b8c"),
];

fn request(n: usize, place: Place, secret: &str) -> Request<Body> {
    let canary = format!("canary-{n}");
    let path = format!("/case/{n}");
    let mut uri = format!("http://api.example.com{path}?page={canary}");
    let mut builder = Request::builder()
        .method("POST")
        .header("x-canary", canary.as_str());
    let mut body = String::new();
    match place {
        Header(name) => builder = builder.header(name, secret),
        Cookie(name) => {
            builder = builder.header("cookie", format!("theme={canary}; {name}={secret}"))
        }
        Query(name) => {
            let encoded = secret.replace(' ', "%20");
            uri = format!("http://api.example.com{path}?page={canary}&{name}={encoded}");
        }
        Json(template) => {
            builder = builder.header("content-type", "application/json");
            body = template
                .replace("{}", secret)
                .replace("\"canary\"", &format!("\"{canary}\""));
            body = body.replace("\"canary\":1", &format!("\"{canary}\":1"));
        }
        Form(template) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            body = template.replace("{}", secret).replace("canary", &canary);
        }
        Text(template) => {
            builder = builder.header("content-type", "text/plain");
            body = template.replace("{}", secret).replace("canary", &canary);
        }
        Userinfo => uri = format!("http://alice:{secret}@api.example.com{path}?page={canary}"),
    }
    builder.uri(uri).body(Body::from(body)).unwrap()
}

/// The forms a secret could take in the output: as sent, without separators (cards),
/// percent-encoded, and its distinctive core without a `Bearer ` or `Basic ` prefix.
fn forms(secret: &str) -> Vec<String> {
    let core = secret
        .trim_start_matches("Bearer ")
        .trim_start_matches("Basic ")
        .to_owned();
    let digits: String = secret.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    vec![secret.to_owned(), core, digits, secret.replace(' ', "%20")]
}

#[tokio::test]
async fn no_secret_of_the_corpus_leaves_the_process() {
    assert!(CORPUS.len() >= 50, "the corpus has {} cases", CORPUS.len());
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/case/{n}",
            any(|body: String| async move {
                // The handler reads the body, then fails.
                Err::<(), _>(HandlerError::new(std::io::Error::other(format!(
                    "processing failed after {} bytes",
                    body.len()
                ))))
            }),
        )
        .layer(TrackingLayer::with_options(
            Options::new()
                .dsn(
                    lighttrace::parse_dsn(
                        "https://0123456789abcdef0123456789abcdef@errors.example.com/1",
                    )
                    .unwrap(),
                )
                .send_default_pii(true)
                .traces_sample_rate(1.0)
                .sink(common::Keep(sink.clone())),
        ));
    for (n, (place, secret)) in CORPUS.iter().enumerate() {
        let res = app
            .clone()
            .oneshot(request(n, *place, secret))
            .await
            .unwrap();
        assert_eq!(res.status(), 500, "case {n}");
    }
    assert!(
        sink.wait_for_events(CORPUS.len(), Duration::from_secs(10))
            .await
    );
    assert!(
        sink.wait_for_transactions(CORPUS.len(), Duration::from_secs(10))
            .await
    );
    let envelopes: Vec<String> = sink
        .serialized()
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .collect();
    let all = envelopes.join("\n");
    let mut leaks = Vec::new();
    for (n, (place, secret)) in CORPUS.iter().enumerate() {
        for form in forms(secret) {
            if form.len() >= 8 && all.contains(&form) {
                leaks.push(format!("case {n} {place:?}: {form:?} leaked"));
            }
        }
        // The non-secret field beside the secret is still there, in the event of this case.
        let canary = format!("canary-{n}");
        let event = envelopes
            .iter()
            .find(|e| e.contains("\"type\":\"event\"") && e.contains(&format!("/case/{n}\"")))
            .unwrap_or_else(|| panic!("no event for case {n}"));
        assert!(
            event.contains(&canary),
            "case {n} {place:?}: {canary} missing from {event}"
        );
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}
