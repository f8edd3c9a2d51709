//! The console's files, embedded at compile time from `assets/`.
//!
//! Adding a file to `assets/` means adding a line to [`ASSETS`]; the tests
//! fail when a file imports or links one that is not listed, or names an
//! address outside this server.

use axum::http::HeaderName;
use axum::http::header;

/// One embedded file.
pub struct Asset {
    /// Its path under `/console/` (the index is served at `/console/`).
    pub path: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The page served at `/console/`.
pub const INDEX: &str = "index.html";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

/// Every file of the console.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/view.js", JS),
    asset!("js/roads.js", JS),
    asset!("js/fleet.js", JS),
    asset!("js/hexes.js", JS),
    asset!("js/board.js", JS),
    asset!("js/live.js", JS),
    asset!("js/perf.js", JS),
    asset!("js/panels.js", JS),
    asset!("js/scene.js", JS),
];

/// Headers on every answer. The policy lets the page load and connect to
/// this origin only (`ws:`/`wss:` for the tracking socket, which `'self'`
/// does not cover in every browser), so nothing is fetched from the
/// internet even by mistake; `no-cache` makes a browser revalidate after
/// an upgrade of the binary.
pub const HEADERS: &[(HeaderName, &str)] = &[
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (header::CACHE_CONTROL, "no-cache"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn text(asset: &Asset) -> &'static str {
        std::str::from_utf8(asset.body).unwrap()
    }

    /// The relative references of a file: `import … from "./x.js"`,
    /// `src="…"` and `href="…"`, resolved against its directory.
    fn references(asset: &Asset) -> Vec<String> {
        let dir = asset.path.rsplit_once('/').map_or("", |(d, _)| d);
        let body = text(asset);
        let mut found = Vec::new();
        for marker in ["from \"", "src=\"", "href=\""] {
            for piece in body.split(marker).skip(1) {
                let Some((target, _)) = piece.split_once('"') else {
                    continue;
                };
                let mut parts: Vec<&str> = if dir.is_empty() {
                    Vec::new()
                } else {
                    dir.split('/').collect()
                };
                for seg in target.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                found.push(parts.join("/"));
            }
        }
        found
    }

    #[test]
    fn every_reference_is_an_embedded_file() {
        let paths: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            for target in references(asset) {
                assert!(
                    paths.contains(&target.as_str()),
                    "{} refers to {target}, which is not in ASSETS",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn every_module_is_referenced() {
        let referenced: Vec<String> = ASSETS.iter().flat_map(references).collect();
        for asset in ASSETS.iter().filter(|a| a.path != INDEX) {
            assert!(
                referenced.iter().any(|r| r == asset.path),
                "{} is embedded but nothing loads it",
                asset.path
            );
        }
    }

    #[test]
    fn nothing_is_loaded_from_another_origin() {
        for asset in ASSETS {
            let body = text(asset);
            for scheme in ["http://", "https://", "//cdn", "//fonts"] {
                assert!(
                    !body.contains(scheme),
                    "{} names {scheme}: the console loads nothing from elsewhere",
                    asset.path
                );
            }
        }
    }
}
