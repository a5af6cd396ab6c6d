//! `stoker list [KIND]`: every registered component with its arguments.

use stoker::registry::{self, Kind};

use crate::EXIT_BAD_INPUT;

/// Prints the registered components (of `kind`, when given).
pub fn list(kind: Option<&str>) -> i32 {
    let filter = match kind {
        None => None,
        Some(text) => match Kind::parse(text) {
            Some(k) => Some(k),
            None => {
                eprintln!("error: unknown kind `{text}`");
                eprintln!(" hint: kinds are {}", Kind::NAMES);
                return EXIT_BAD_INPUT;
            }
        },
    };
    let mut current = None;
    for r in registry::registrations() {
        if filter.is_some_and(|k| k != r.kind) {
            continue;
        }
        if current != Some(r.kind) {
            if current.is_some() {
                println!();
            }
            println!("== {} ({}) ==", r.kind, r.kind.selected_at());
            current = Some(r.kind);
        }
        println!(
            "{} {}  [{}]  {}:{}",
            r.kind, r.name, r.crate_name, r.file, r.line
        );
        println!("    {}", r.description);
        let args = (r.args)();
        if args.is_empty() {
            println!("    args: none");
            continue;
        }
        println!("    args:");
        let defaults: Vec<String> = args
            .iter()
            .map(|a| match &a.default {
                Some(d) => format!("default {d}"),
                None => "required".into(),
            })
            .collect();
        let name_width = args.iter().map(|a| a.name.len()).max().unwrap_or(0);
        let type_width = args.iter().map(|a| a.ty.len()).max().unwrap_or(0);
        let default_width = defaults.iter().map(String::len).max().unwrap_or(0);
        for (a, default) in args.iter().zip(&defaults) {
            println!(
                "      {:name_width$}  {:type_width$}  {default:default_width$}  {}",
                a.name, a.ty, a.doc
            );
        }
    }
    if current.is_none() {
        println!(
            "no components registered{}",
            kind.map(|k| format!(" of kind {k}")).unwrap_or_default()
        );
    }
    0
}
