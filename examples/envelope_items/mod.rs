//! Reading an envelope's items without a protocol library, as Relay reads them (JSON headers,
//! a `length` or a newline ending each payload): for the collectors of the load tools and of
//! the tests, which must also read client reports whose reasons `sentry-types` cannot name.

/// One item of an envelope.
pub struct Item<'a> {
    /// The item's header line, as sent.
    pub header: &'a [u8],
    /// Its `type`.
    pub ty: String,
    pub payload: &'a [u8],
}

/// The envelope's header line and its items; `None` when a header is not JSON or a length
/// runs past the end.
pub fn items(raw: &[u8]) -> Option<(&[u8], Vec<Item<'_>>)> {
    let line = |at: usize| {
        let end = raw[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |i| at + i);
        (&raw[at..end], (end + 1).min(raw.len()))
    };
    let (envelope_header, mut at) = line(0);
    serde_json::from_slice::<serde_json::Value>(envelope_header).ok()?;
    let mut out = Vec::new();
    while at < raw.len() {
        let (header, next) = line(at);
        if header.is_empty() {
            at = next;
            continue;
        }
        let parsed: serde_json::Value = serde_json::from_slice(header).ok()?;
        let (payload, after) = match parsed["length"].as_u64() {
            Some(n) => {
                let end = next.checked_add(usize::try_from(n).ok()?)?;
                (raw.get(next..end)?, (end + 1).min(raw.len()))
            }
            None => line(next),
        };
        let ty = parsed["type"].as_str()?.to_owned();
        out.push(Item {
            header,
            ty,
            payload,
        });
        at = after;
    }
    Some((envelope_header, out))
}
