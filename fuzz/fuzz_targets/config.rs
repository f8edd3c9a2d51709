//! The configuration file (`hexdash serve --config`): TOML text through
//! `hexdash::Config::load_toml` (the layering `Config::load` does, with the
//! file's text in memory), then the checks `App::build` and the demo make
//! before anything starts, and the redacted form that is logged.
//!
//! Properties: no panic; the logged form carries no secret (JWT secret,
//! admin password, broker password, database and Redis URL passwords).
#![no_main]

use hexdash::config::{Config, Overrides};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `Toml::file_exact` reads the file as UTF-8; other bytes are an error
    // before any parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::load_toml(text, &Overrides::default()) else {
        return;
    };
    let _ = config.roles.validate(config.redis_url.is_some());
    let _ = config.cluster.validate();
    let _ = config.ingest.broker.validate();
    let _ = config.demo.validate();
    let redacted = config.redacted();
    for secret in [
        &redacted.jwt_secret,
        &redacted.admin_password,
        &redacted.ingest.broker.password,
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(secret, "<redacted>", "a secret in the logged configuration");
    }
    for (url, logged) in [
        (Some(&config.database_url), Some(&redacted.database_url)),
        (config.redis_url.as_ref(), redacted.redis_url.as_ref()),
    ] {
        if let (Some(url), Some(logged)) = (url, logged) {
            assert_no_password(url, logged);
        }
    }
    let _ = format!("{redacted:?}");
});

/// A URL with a password (`scheme://user:password@host`, the userinfo
/// ending at the authority's last `@`, as URL parsers read it) is logged
/// with `<redacted>` as its whole password.
fn assert_no_password(url: &str, logged: &str) {
    if password(url).is_some_and(|p| !p.is_empty()) {
        assert_eq!(
            password(logged),
            Some("<redacted>"),
            "a URL password in the logged configuration: {logged}"
        );
    }
}

/// The password of a URL's userinfo, if it has one.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, p)| p)
}
