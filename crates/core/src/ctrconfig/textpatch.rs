//! Carrying a toml_edit change back onto the original text.
//!
//! toml_edit prints an untouched document byte for byte in most files, but not all:
//! when one table name is quoted differently in two headers (a 2.x default config
//! with `'io.containerd.cri.v1.images'` plus a snippet pasted from the docs with
//! `"io.containerd.cri.v1.images"`), every header is printed with the first spelling.
//! An edit must not rewrite lines the operator did not ask about, so the change is
//! computed as a line diff between the re-printed original and the edited print,
//! and that diff is applied to the original text. Pure and bounded: refuses (returns
//! `None`) instead of guessing when the two prints do not line up.

/// Largest diff area (lines × lines) worked out; beyond it the edit is refused.
const MAX_CELLS: usize = 4_000_000;

/// `original` with the change from `base` (toml_edit's print of `original`) to
/// `after` (its print of the edited tree) applied, or `None` when that cannot be
/// done line for line.
pub(crate) fn carry_over(original: &str, base: &str, after: &str) -> Option<String> {
    if base == original {
        return Some(after.to_string());
    }
    let orig: Vec<&str> = original.split_inclusive('\n').collect();
    let base: Vec<&str> = base.split_inclusive('\n').collect();
    let after: Vec<&str> = after.split_inclusive('\n').collect();
    if orig.len() != base.len() {
        return None;
    }
    let prefix = base.iter().zip(&after).take_while(|(a, b)| a == b).count();
    let suffix = base[prefix..]
        .iter()
        .rev()
        .zip(after[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let b_mid = &base[prefix..base.len() - suffix];
    let a_mid = &after[prefix..after.len() - suffix];
    let ops = lcs_ops(b_mid, a_mid)?;
    let mut out = String::with_capacity(original.len() + 64);
    orig[..prefix].iter().for_each(|l| out.push_str(l));
    let mut bi = prefix;
    for op in ops {
        match op {
            Op::Keep => {
                out.push_str(orig[bi]);
                bi += 1;
            }
            Op::Delete => bi += 1,
            Op::Insert(line) => out.push_str(line),
        }
    }
    orig[orig.len() - suffix..]
        .iter()
        .for_each(|l| out.push_str(l));
    Some(out)
}

enum Op<'a> {
    Keep,
    Delete,
    Insert(&'a str),
}

/// Edit script turning `a` into `b` by longest common subsequence.
fn lcs_ops<'a>(a: &[&str], b: &[&'a str]) -> Option<Vec<Op<'a>>> {
    let (n, m) = (a.len(), b.len());
    if (n + 1).checked_mul(m + 1)? > MAX_CELLS {
        return None;
    }
    // table[i][j]: LCS length of a[i..] and b[j..].
    let w = m + 1;
    let mut table = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * w + j] = if a[i] == b[j] {
                table[(i + 1) * w + j + 1] + 1
            } else {
                table[(i + 1) * w + j].max(table[i * w + j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Keep);
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[i * w + j + 1] >= table[(i + 1) * w + j]) {
            ops.push(Op::Insert(b[j]));
            j += 1;
        } else {
            ops.push(Op::Delete);
            i += 1;
        }
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_prints_pass_the_edit_through() {
        assert_eq!(
            carry_over("a\n", "a\n", "a\nb\n").as_deref(),
            Some("a\nb\n")
        );
    }

    #[test]
    fn lines_toml_edit_reprinted_keep_their_original_spelling() {
        let original = "[p.'x'.b]\nk = 1\n[p.\"x\".a]\nz = 2\n";
        let base = "[p.'x'.b]\nk = 1\n[p.'x'.a]\nz = 2\n";
        let after = "[p.'x'.b]\nk = 1\nnew = 3\n[p.'x'.a]\n";
        assert_eq!(
            carry_over(original, base, after).as_deref(),
            Some("[p.'x'.b]\nk = 1\nnew = 3\n[p.\"x\".a]\n")
        );
    }

    #[test]
    fn prints_that_do_not_line_up_are_refused() {
        assert_eq!(carry_over("a\nb\n", "a b\n", "a b\nc\n"), None);
    }
}
