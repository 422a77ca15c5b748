//! SQL statements as Sentry reads them: the operation (`db.operation`), and the statement with
//! its literals replaced, so the same query with other values is one statement (Sentry's span
//! grouping, `parametrize_db_span_strategy` in `src/sentry/spans/grouping/strategy/base.py`:
//! quoted strings, numbers and booleans become `%s`, an `IN (...)` list `IN (%s)`).

/// The statement's first keyword, upper-case (`SELECT`, `INSERT`, `WITH`, ...).
pub(crate) fn operation(statement: &str) -> Option<String> {
    let statement = statement.trim_start();
    let end = statement
        .bytes()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(statement.len());
    (end > 0).then(|| statement[..end].to_ascii_uppercase())
}

/// `statement` with its literals replaced by `%s`, whitespace collapsed.
pub(crate) fn parametrized(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    let bytes = statement.as_bytes();
    let mut i = 0;
    let mut last_space = true;
    while i < bytes.len() {
        let b = bytes[i];
        let word_before = out
            .as_bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if b == b'\'' {
            // A quoted string ('' is an escaped quote inside it).
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push_str("%s");
            last_space = false;
        } else if b.is_ascii_digit() && !word_before {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            out.push_str("%s");
            last_space = false;
        } else if b.is_ascii_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            i += 1;
        } else if !word_before && keyword_at(bytes, i).is_some() {
            let len = keyword_at(bytes, i).unwrap_or(0);
            out.push_str("%s");
            i += len;
            last_space = false;
        } else {
            out.push(char::from(b));
            // Multi-byte characters are copied whole.
            if !b.is_ascii() {
                out.pop();
                let rest = &statement[i..];
                if let Some(c) = rest.chars().next() {
                    out.push(c);
                    i += c.len_utf8();
                    last_space = false;
                    continue;
                }
            }
            last_space = false;
            i += 1;
        }
    }
    collapse_in_lists(out.trim_end())
}

/// `true`/`false` as a whole word at `i`: its length.
fn keyword_at(bytes: &[u8], i: usize) -> Option<usize> {
    for word in [&b"true"[..], b"false"] {
        let end = i + word.len();
        if bytes.len() >= end
            && bytes[i..end].eq_ignore_ascii_case(word)
            && !bytes
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return Some(word.len());
        }
    }
    None
}

/// `IN (%s, %s, %s)` (and lists of placeholders such as `IN (?, ?)` or `IN ($1, $2)`) as
/// `IN (%s)`.
fn collapse_in_lists(statement: &str) -> String {
    let upper = statement.to_ascii_uppercase();
    let mut out = String::with_capacity(statement.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = upper[search..].find(" IN (") {
        let open = search + found + " IN (".len();
        let Some(close) = statement[open..].find(')').map(|c| open + c) else {
            break;
        };
        let inside = &statement[open..close];
        let all_params = inside.split(',').all(|item| {
            let item = item.trim();
            item == "%s"
                || item == "?"
                || item
                    .strip_prefix('$')
                    .is_some_and(|n| n == "%s" || n.bytes().all(|b| b.is_ascii_digit()))
        });
        if all_params && !inside.trim().is_empty() {
            out.push_str(&statement[rest..open]);
            out.push_str("%s");
            rest = close;
        }
        search = close;
    }
    out.push_str(&statement[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_placeholders_and_the_rest_stays() {
        assert_eq!(
            parametrized("SELECT * FROM posts WHERE user_id = 42 AND title = 'it''s'"),
            "SELECT * FROM posts WHERE user_id = %s AND title = %s"
        );
        assert_eq!(
            parametrized("select a1, b from t2 where c = -1.5e3 and d = TRUE"),
            "select a1, b from t2 where c = -%s and d = %s"
        );
        assert_eq!(
            parametrized("SELECT *\n  FROM users\n WHERE id IN (1, 2, 3)"),
            "SELECT * FROM users WHERE id IN (%s)"
        );
        assert_eq!(
            parametrized("SELECT * FROM t WHERE id IN (?, ?) AND x = $1"),
            "SELECT * FROM t WHERE id IN (%s) AND x = $%s"
        );
        assert_eq!(parametrized("SELECT 'é✓' FROM t"), "SELECT %s FROM t");
        assert_eq!(parametrized("SELECT naïve FROM t"), "SELECT naïve FROM t");
        assert_eq!(parametrized("SELECT 'unterminated"), "SELECT %s");
        assert_eq!(operation("  select 1").as_deref(), Some("SELECT"));
        assert_eq!(operation("(SELECT 1)"), None);
    }
}
