//! `loadtest`: the network load generator that drives a running hexdash (and
//! the peers in `../shared/peers/`) over real sockets. Its scenarios
//! (`ingest`, `track`, `nearby`, `orders`, `mixed`) are the load-test issue's
//! work; until then this binary only says so, and the engine's in-process
//! benchmarks live in `bench/`.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "loadtest: no scenarios yet (they arrive with the load-test issue); \
         for in-process engine benchmarks run `cargo bench -p bench`"
    );
    ExitCode::from(2)
}
