//! `ctrdiag explain [CAUSE] [--list]`: the core's explanation of a cause code, printed
//! without ctrdiagd (the text is compiled in, so it works offline and on a node whose
//! daemon is down).

use crate::cli::stdout::out;

use ctrdiag_core::cause::CauseCode;
use ctrdiag_core::explain::{explain, render_list, render_text};
use serde_json::json;

use super::print_json;
use crate::cli::{Exit, Output};

/// One cause's explanation, or every code with its title when `cause` is `None`.
pub fn run(cause: Option<CauseCode>, output: Output) -> Exit {
    match (cause, output) {
        (Some(c), Output::Table) => out!("{}", render_text(&explain(c))),
        (Some(c), Output::Json) => print_json(&json!(explain(c))),
        (None, Output::Table) => out!("{}", render_list()),
        (None, Output::Json) => print_json(&json!({
            "causes": CauseCode::ALL
                .iter()
                .map(|c| {
                    let e = explain(*c);
                    json!({"cause": c, "title": e.title, "doc": e.doc})
                })
                .collect::<Vec<_>>(),
        })),
    }
    Exit::Ok
}
