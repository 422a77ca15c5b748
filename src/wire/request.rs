//! The `request` interface of a transaction, written as JSON from the scrubbed parts
//! `scrub::interface` decides, without building the struct.

use super::json::{string, Object};
use crate::event::RequestSnapshot;
use crate::scrub::interface::{self, HeaderValue, Parts};
use crate::scrub::names::Spelling;
use crate::scrub::{HeaderNames, ScrubRules};

/// Writes the scrubbed `request` interface of `request` as a JSON object.
pub(super) fn write(
    out: &mut Vec<u8>,
    request: &RequestSnapshot,
    pii: bool,
    rules: &ScrubRules,
    scratch: &mut String,
    names: &mut HeaderNames,
) {
    let mut object = Object::new(out);
    scratch.clear();
    if request.write_url(scratch) {
        object.str("url", scratch);
    }
    object.str("method", request.method.as_str());
    let mut written = Written {
        object,
        headers_open: false,
    };
    interface::walk(request, pii, rules, names, &mut written);
    let Written {
        mut object,
        headers_open,
    } = written;
    if headers_open {
        object.value().push(b'}');
    }
    object.end();
}

/// The object being written; `headers` is the last field, opened with its first header.
struct Written<'a> {
    object: Object<'a>,
    headers_open: bool,
}

impl Parts for Written<'_> {
    fn data(&mut self, data: &str) {
        self.object.str("data", data);
    }

    fn query_string(&mut self, query: &str) {
        self.object.str("query_string", query);
    }

    fn cookies(&mut self, cookies: &str) {
        self.object.str("cookies", cookies);
    }

    #[inline]
    fn header(&mut self, name: Spelling<'_>, value: HeaderValue<'_>) {
        let out = if self.headers_open {
            let out = self.object.value();
            out.push(b',');
            out
        } else {
            self.headers_open = true;
            let out = self.object.field("headers");
            out.push(b'{');
            out
        };
        out.extend_from_slice(name.json_key());
        match value {
            HeaderValue::Filtered => string(out, crate::event::FILTERED),
            HeaderValue::Plain(bytes) => {
                out.push(b'"');
                out.extend_from_slice(bytes);
                out.push(b'"');
            }
            HeaderValue::Text(text) => string(out, &text),
        }
    }
}
