//! One line of `journalctl -o json` into a [`LogLine`]. Pure, and defensive: journalctl
//! prints `MESSAGE` as a string, as an array of bytes (not UTF-8, or binary), as an array
//! of values (a field repeated in one entry), or not at all.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::{LogLine, Position};

/// Why a line of journalctl's output gave no log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skip {
    /// Not a JSON object: journalctl printed something else.
    NotJson,
    /// No `__CURSOR`: the line would have no resume point.
    NoCursor,
    /// No `MESSAGE` (or an unusable one): nothing for the detectors.
    NoMessage,
}

pub(super) fn parse_entry(line: &[u8]) -> Result<LogLine, Skip> {
    let Ok(Value::Object(entry)) = serde_json::from_slice::<Value>(line) else {
        return Err(Skip::NotJson);
    };
    let Some(Value::String(cursor)) = entry.get("__CURSOR") else {
        return Err(Skip::NoCursor);
    };
    let text = entry
        .get("MESSAGE")
        .and_then(message_text)
        .ok_or(Skip::NoMessage)?;
    let time = match entry.get("__REALTIME_TIMESTAMP") {
        Some(Value::String(micros)) => micros
            .parse::<u64>()
            .ok()
            .and_then(|us| UNIX_EPOCH.checked_add(Duration::from_micros(us))),
        _ => None,
    };
    Ok(LogLine {
        text,
        position: Position::Journal {
            cursor: cursor.clone(),
        },
        time,
    })
}

/// The `__CURSOR` of an entry, whatever else it holds (it may have no `MESSAGE`).
pub(super) fn entry_cursor(line: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(line)
        .ok()?
        .get("__CURSOR")?
    {
        Value::String(cursor) => Some(cursor.clone()),
        _ => None,
    }
}

/// The text of a `MESSAGE` value; repeated values are joined with newlines.
fn message_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => match bytes(items) {
            Some(raw) => Some(String::from_utf8_lossy(&raw).into_owned()),
            None => {
                let parts: Vec<String> = items.iter().filter_map(message_text).collect();
                (!parts.is_empty()).then(|| parts.join("\n"))
            }
        },
        _ => None,
    }
}

/// `items` as bytes, if every one is a number from 0 to 255.
fn bytes(items: &[Value]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: &str = "s=42ba44467d1546af80783cb35a4fa509;i=1;b=0123456789abcdef0123456789abcdef;m=0;t=60a24181e4000;x=d3ba147820f5a099";

    fn entry(message: &str) -> String {
        format!(
            r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1700000000000001","_SYSTEMD_UNIT":"containerd.service","MESSAGE":{message}}}"#
        )
    }

    #[test]
    fn a_string_message_with_its_cursor_and_time() {
        let line = parse_entry(entry(r#""level=error msg=\"PullImage failed\"""#).as_bytes())
            .expect("a log line");
        assert_eq!(line.text, r#"level=error msg="PullImage failed""#);
        assert_eq!(
            line.position,
            Position::Journal {
                cursor: CURSOR.into()
            }
        );
        assert_eq!(
            line.time,
            Some(UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_001))
        );
    }

    #[test]
    fn a_byte_array_message_is_decoded_lossily() {
        // "tls: \xff" as journalctl prints a field that is not UTF-8.
        let line = parse_entry(entry("[116,108,115,58,32,255]").as_bytes()).unwrap();
        assert_eq!(line.text, "tls: \u{fffd}");
    }

    #[test]
    fn a_repeated_message_field_keeps_every_value() {
        let line = parse_entry(entry(r#"["first",[115,101,99,111,110,100]]"#).as_bytes()).unwrap();
        assert_eq!(line.text, "first\nsecond");
    }

    #[test]
    fn entries_without_a_usable_message_are_skipped() {
        for message in ["null", "42", "{}", r#"[null]"#] {
            assert_eq!(
                parse_entry(entry(message).as_bytes()),
                Err(Skip::NoMessage),
                "MESSAGE {message}"
            );
        }
        let no_message = format!(r#"{{"__CURSOR":"{CURSOR}"}}"#);
        assert_eq!(parse_entry(no_message.as_bytes()), Err(Skip::NoMessage));
    }

    #[test]
    fn a_line_without_cursor_or_not_json_is_skipped() {
        assert_eq!(parse_entry(br#"{"MESSAGE":"hello"}"#), Err(Skip::NoCursor));
        assert_eq!(
            parse_entry(br#"{"MESSAGE":"hello","__CURSOR":7}"#),
            Err(Skip::NoCursor)
        );
        assert_eq!(parse_entry(b"-- No entries --"), Err(Skip::NotJson));
        assert_eq!(parse_entry(b"[1,2]"), Err(Skip::NotJson));
    }

    #[test]
    fn the_cursor_of_an_entry_without_message() {
        let line = format!(r#"{{"__CURSOR":"{CURSOR}","CODE_FILE":"x.c"}}"#);
        assert_eq!(entry_cursor(line.as_bytes()).as_deref(), Some(CURSOR));
        assert_eq!(entry_cursor(br#"{"MESSAGE":"m"}"#), None);
        assert_eq!(entry_cursor(b""), None);
    }

    #[test]
    fn an_unreadable_timestamp_leaves_the_time_unknown() {
        let line =
            format!(r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"soon","MESSAGE":"m"}}"#);
        assert_eq!(parse_entry(line.as_bytes()).unwrap().time, None);
    }
}
