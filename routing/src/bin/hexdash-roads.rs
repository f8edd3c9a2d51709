//! `hexdash-roads`: builds a road graph file from an OpenStreetMap extract
//! (GeoJSON of ways, optionally gzip-compressed, or `.osm.pbf`) and
//! describes graph files.
//!
//! ```text
//! hexdash-roads build --input map.osm.pbf --output data/city.hxroads
//! hexdash-roads info --graph data/city.hxroads
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use routing::{Config, Router, load};

const USAGE: &str = "usage:
  hexdash-roads build --input <map.geojson[.gz] | map.osm.pbf> --output <graph.hxroads>
  hexdash-roads info --graph <graph.hxroads>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let result = match (
        args.first().map(String::as_str),
        flag("--input"),
        flag("--output"),
        flag("--graph"),
    ) {
        (Some("build"), Some(input), Some(output), _) => build(&input, &output),
        (Some("info"), _, _, Some(graph)) => info(&graph),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hexdash-roads: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build(input: &Path, output: &Path) -> Result<(), routing::Error> {
    let started = Instant::now();
    let ways = load::read_ways(input)?;
    let way_count = ways.len();
    let graph = routing::RoadGraph::from_ways(ways)?;
    load::write_graph(output, &graph)?;
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {way_count} drivable ways -> {} nodes, {} segments, {} arcs, {:.0} km of road; {} bytes in {:.2} s",
        output.display(),
        graph.node_count(),
        graph.segments().len(),
        graph.arc_count(),
        graph.length_km(),
        bytes,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn info(path: &Path) -> Result<(), routing::Error> {
    let started = Instant::now();
    let graph = load::read_graph(path)?;
    let loaded = started.elapsed();
    println!(
        "{}: {} nodes, {} segments, {} arcs, {:.0} km of road; loaded in {:.1} ms",
        path.display(),
        graph.node_count(),
        graph.segments().len(),
        graph.arc_count(),
        graph.length_km(),
        loaded.as_secs_f64() * 1000.0,
    );
    let started = Instant::now();
    let router = Router::new(graph, Config::default());
    println!(
        "snapping index and contraction hierarchy ({} arcs) built in {:.0} ms",
        router.hierarchy().arc_count(),
        started.elapsed().as_secs_f64() * 1000.0,
    );
    Ok(())
}
