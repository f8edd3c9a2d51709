//! Subcommands besides `serve`, each a thin layer over its crate: parse the
//! flags, call the library, write files and print a summary.

pub mod simulate;
