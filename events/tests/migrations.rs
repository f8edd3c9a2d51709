//! The event tables' two migration files describe the same schema.

use std::collections::BTreeMap;

#[path = "common/mod.rs"]
#[allow(unused)]
mod common;

/// Every table's columns (name and constraint words other than the type)
/// and every index's name, from one file. Triggers are left out: SQLite's
/// version trigger does what PostgreSQL's append statement does itself.
fn shape(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut shape = BTreeMap::new();
    let mut table: Option<String> = None;
    let mut in_trigger = false;
    for line in sql.lines().map(str::trim) {
        if line.starts_with("CREATE TRIGGER") {
            in_trigger = true;
        }
        if in_trigger {
            in_trigger = line != "END;";
            continue;
        }
        if line.starts_with("--") || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.split_whitespace().next().unwrap().to_owned();
            shape.insert(name.clone(), Vec::new());
            table = Some(name);
        } else if line.starts_with("CREATE INDEX") || line.starts_with("INSERT INTO") {
            shape.insert(line.to_owned(), Vec::new());
        } else if line.starts_with(')') {
            table = None;
        } else if let Some(t) = &table {
            let column = line.split_whitespace().next().unwrap().to_owned();
            shape.get_mut(t).unwrap().push(column);
        }
    }
    shape
}

#[test]
fn the_sqlite_and_postgres_files_pair_up() {
    let sqlite = shape(common::SQLITE_SCHEMA);
    assert_eq!(sqlite, shape(common::POSTGRES_SCHEMA));
    assert!(sqlite.contains_key("events") && sqlite.contains_key("event_dead_letters"));
}
