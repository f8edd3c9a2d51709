//! Reading `/metrics` as Prometheus does.

use super::TestApp;

/// The scrape, as text.
pub async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Families with a `# TYPE` line but no `# HELP` line (promtool's "no help
/// text").
pub fn families_without_help(text: &str) -> Vec<String> {
    let named = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let helped = named("# HELP ");
    named("# TYPE ")
        .into_iter()
        .filter(|family| !helped.contains(family))
        .collect()
}

/// Every family has HELP text; and, where `promtool` is installed (Debian:
/// `prometheus`), `promtool check metrics` accepts the scrape.
pub fn assert_well_formed(text: &str) {
    let missing = families_without_help(text);
    assert!(missing.is_empty(), "no HELP for {missing:?} in:\n{text}");
    promtool_check(text);
}

fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not found: skipping `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
