//! Output for people (aligned tables, human sizes) and for scripts (JSON).

/// Prints rows under a header with columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                l += &format!("{cell:<w$}   ", w = widths[i]);
            } else {
                l += cell;
            }
        }
        out += l.trim_end();
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `1.5 KiB`, `23.4 MiB`: the units `ctr` and `crictl` use.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `sha256:0123456789ab` (12 hex digits, as `docker images` shortens ids).
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_string(),
    }
}

/// RFC 3339 in UTC, to the second; `-` when unknown.
pub fn timestamp(unix: i64) -> String {
    match u64::try_from(unix) {
        Ok(secs) if secs > 0 => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string(),
        _ => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["NAME", "SIZE"],
            &[
                vec!["a".into(), "1 B".into()],
                vec!["longer".into(), "2 B".into()],
            ],
        );
        assert_eq!(t, "NAME     SIZE\na        1 B\nlonger   2 B\n");
    }

    #[test]
    fn sizes_and_digests_read_like_ctr() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(timestamp(0), "-");
        assert_eq!(timestamp(86400), "1970-01-02T00:00:00Z");
    }
}
