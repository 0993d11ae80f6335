//! Small, careful edits on a toml_edit tree.
//!
//! The executor shows every change as a diff and backs files up, so an edit must
//! change only the bytes it means to: parents it has to create are implicit (only the
//! leaf gets a `[header]`), an existing value keeps its surrounding whitespace and
//! comment, and a removal prunes exactly the ancestors that the removal left empty
//! and that have no header of their own. Add-then-remove therefore restores the
//! original bytes (LAB.md, measured with toml_edit 0.25).

use toml_edit::{Array, InlineTable, Item, Table, Value};

/// A key path's display form, `a."b.c".d`, as an operator would write it in the file.
pub(crate) fn dotted(path: &[&str]) -> String {
    path.iter()
        .map(|k| {
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                (*k).to_string()
            } else {
                format!("{:?}", k)
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The kind of an item, for error messages.
pub(crate) fn kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

/// A table was needed at `path` but something else is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotATable {
    pub path: String,
    pub found: &'static str,
}

/// Follows `path` from `root` without creating anything.
pub(crate) fn lookup<'a>(root: &'a Item, path: &[&str]) -> Result<Option<&'a Item>, NotATable> {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        let table = cur.as_table_like().ok_or_else(|| NotATable {
            path: dotted(&path[..i]),
            found: kind(cur),
        })?;
        match table.get(key) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// Follows `path` from `root` for editing, without creating anything.
pub(crate) fn lookup_mut<'a>(
    root: &'a mut Item,
    path: &[&str],
) -> Result<Option<&'a mut Item>, NotATable> {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        let here = kind(cur);
        let table = cur.as_table_like_mut().ok_or_else(|| NotATable {
            path: dotted(&path[..i]),
            found: here,
        })?;
        match table.get_mut(key) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// Removes the elements of `array` that `drop` picks; returns how many. The element
/// that becomes the first one takes over the old first one's leading whitespace, so
/// `["a", "b"]` without `"a"` reads `["b"]`, not `[ "b"]`.
pub(crate) fn remove_elements(array: &mut Array, drop: impl Fn(&Value) -> bool) -> usize {
    let before = array.len();
    let first_prefix = array
        .get(0)
        .and_then(|v| v.decor().prefix().cloned())
        .unwrap_or_default();
    let first_dropped = array.get(0).is_some_and(&drop);
    array.retain(|v| !drop(v));
    if first_dropped && let Some(first) = array.get_mut(0) {
        first.decor_mut().set_prefix(first_prefix);
    }
    before - array.len()
}

/// Follows `path`, creating missing tables. Created ancestors are implicit; the last
/// one gets a header. Inside an inline table, new tables are inline too (a header
/// cannot live inside `{ }`).
pub(crate) fn ensure_table<'a>(
    root: &'a mut Item,
    path: &[&str],
) -> Result<&'a mut Item, NotATable> {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        let leaf = i + 1 == path.len();
        let inline = !cur.is_table();
        let here = kind(cur);
        let table = cur.as_table_like_mut().ok_or_else(|| NotATable {
            path: dotted(&path[..i]),
            found: here,
        })?;
        if !table.contains_key(key) {
            let fresh = if inline {
                Item::Value(Value::InlineTable(InlineTable::new()))
            } else {
                let mut t = Table::new();
                t.set_implicit(!leaf);
                Item::Table(t)
            };
            table.insert(key, fresh);
        }
        let next = table.get_mut(key).ok_or_else(|| NotATable {
            path: dotted(&path[..=i]),
            found: "nothing",
        })?;
        if !next.is_table_like() {
            return Err(NotATable {
                path: dotted(&path[..=i]),
                found: kind(next),
            });
        }
        cur = next;
    }
    Ok(cur)
}

/// Sets `key = value` in the table `table`. An existing value keeps its decoration
/// (spaces, trailing comment); a new key copies the indentation of its siblings so
/// it lines up with `containerd config default` output.
pub(crate) fn set_value(
    table: &mut Item,
    key: &str,
    value: Value,
    path: &[&str],
) -> Result<(), NotATable> {
    let plain_table = table.is_table();
    let here = kind(table);
    let tl = table.as_table_like_mut().ok_or_else(|| NotATable {
        path: dotted(path),
        found: here,
    })?;
    match tl.get_mut(key) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            let mut new = value;
            *new.decor_mut() = decor;
            *old = new;
            Ok(())
        }
        Some(other) => Err(NotATable {
            path: dotted(&[path, &[key]].concat()),
            found: kind(other),
        }),
        None => {
            let indent = if plain_table && !tl.is_dotted() {
                sibling_indent(tl)
            } else {
                None
            };
            tl.insert(key, Item::Value(value));
            if let (Some(indent), Some(mut k)) = (indent, tl.key_mut(key)) {
                k.leaf_decor_mut().set_prefix(indent);
            }
            Ok(())
        }
    }
}

/// The whitespace-only prefix of the first plain key-value in `tl`, if any.
fn sibling_indent(tl: &dyn toml_edit::TableLike) -> Option<String> {
    tl.iter()
        .filter(|(_, item)| item.is_value())
        .find_map(|(k, _)| {
            let prefix = tl.key(k)?.leaf_decor().prefix()?.as_str()?.to_string();
            prefix
                .chars()
                .all(|c| c == ' ' || c == '\t')
                .then_some(prefix)
        })
}

/// Removes the item at `path` and then every ancestor the removal left empty that has
/// no header of its own (implicit, dotted or inline). Returns whether anything was
/// removed; a missing path is not an error.
pub(crate) fn remove_and_prune(root: &mut Item, path: &[&str]) -> Result<bool, NotATable> {
    remove_rec(root, path, 0)
}

fn remove_rec(parent: &mut Item, path: &[&str], depth: usize) -> Result<bool, NotATable> {
    let Some((first, rest)) = path[depth..].split_first() else {
        return Ok(false);
    };
    let here = kind(parent);
    let tl = parent.as_table_like_mut().ok_or_else(|| NotATable {
        path: dotted(&path[..depth]),
        found: here,
    })?;
    if rest.is_empty() {
        return Ok(tl.remove(first).is_some());
    }
    let Some(child) = tl.get_mut(first) else {
        return Ok(false);
    };
    let removed = remove_rec(child, path, depth + 1)?;
    if removed && prunable(child) {
        tl.remove(first);
    }
    Ok(removed)
}

fn prunable(item: &Item) -> bool {
    match item {
        Item::Table(t) => t.is_empty() && (t.is_implicit() || t.is_dotted()),
        Item::Value(Value::InlineTable(t)) => t.is_empty(),
        _ => false,
    }
}
