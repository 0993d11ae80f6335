//! docs/causes/ is generated from the core's explanations: this test renders every page
//! and fails when a committed one differs, so the pages cannot drift from
//! `ctrdiag explain`. `CTRDIAG_BLESS=1 cargo test --test cause_docs` writes them.

use std::collections::BTreeMap;
use std::path::Path;

use ctrdiag::cause::CauseCode;
use ctrdiag::explain::{DOCS_DIR, explain, render_index_markdown, render_markdown};

/// Every page as it should be, by file name.
fn pages() -> BTreeMap<String, String> {
    let mut pages: BTreeMap<String, String> = CauseCode::ALL
        .iter()
        .map(|c| (format!("{c}.md"), render_markdown(&explain(*c))))
        .collect();
    pages.insert("README.md".into(), render_index_markdown());
    pages
}

#[test]
fn the_cause_pages_are_generated_from_the_core() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOCS_DIR);
    let pages = pages();
    if std::env::var_os("CTRDIAG_BLESS").is_some() {
        std::fs::create_dir_all(&dir).expect("create docs/causes");
        for entry in std::fs::read_dir(&dir).expect("read docs/causes") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !pages.contains_key(&name) {
                std::fs::remove_file(&path).expect("remove a page of no code");
            }
        }
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text).expect("write page");
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, text) in &pages {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(committed) if committed == *text => {}
            Ok(_) => stale.push(format!("{name} differs")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !pages.contains_key(&name) {
            stale.push(format!("{name} is no cause code's page"));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/causes/ is out of date ({}): run `CTRDIAG_BLESS=1 cargo test --test cause_docs` and commit the result",
        stale.join("; ")
    );
}
