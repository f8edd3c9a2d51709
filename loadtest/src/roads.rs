//! The road network drivers move on, loaded once at start-up from the
//! Gothenburg OpenStreetMap extract the repository ships in `data/`
//! (`gothenburg_roads_2016.geojson.gz`: map data © OpenStreetMap
//! contributors, available under the Open Database License, ODbL 1.0).
//!
//! Car-drivable ways become an undirected graph (couriers on bikes and
//! mopeds ignore `oneway` often enough that a load generator may too). The
//! extract has no node ids: ways join where they share exactly equal
//! coordinates. Only the largest connected component is kept, so a driver
//! never gets stuck on an island of a few metres.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::geo::LatLng;

/// `highway` values a delivery driver may use (and their `_link` variants).
const DRIVABLE: &[&str] = &[
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
    "service",
];

/// Edges shorter than this are duplicate points in the source; they would
/// only cost the walker loop iterations.
const MIN_EDGE_M: f64 = 0.05;

/// An undirected road graph in compressed adjacency form.
#[derive(Debug)]
pub struct RoadNetwork {
    nodes: Vec<LatLng>,
    /// `targets[offsets[n]..offsets[n + 1]]` are the neighbours of node `n`.
    offsets: Vec<u32>,
    targets: Vec<u32>,
    /// Length of the edge at the same index of `targets`, metres.
    lengths_m: Vec<f32>,
}

#[derive(Deserialize)]
struct FeatureCollection {
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct Feature {
    #[serde(default)]
    properties: Properties,
    geometry: Option<Geometry>,
}

#[derive(Default, Deserialize)]
struct Properties {
    highway: Option<String>,
    area: Option<String>,
}

#[derive(Deserialize)]
struct Geometry {
    #[serde(rename = "type")]
    kind: String,
    coordinates: serde_json::Value,
}

impl RoadNetwork {
    /// Reads a gzip-compressed GeoJSON file of OSM ways.
    pub fn load_geojson_gz(path: &Path) -> anyhow::Result<RoadNetwork> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening road network {}", path.display()))?;
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        Self::from_geojson_reader(reader)
            .with_context(|| format!("reading road network {}", path.display()))
    }

    /// Parses (uncompressed) GeoJSON.
    pub fn from_geojson_reader(reader: impl Read) -> anyhow::Result<RoadNetwork> {
        let collection: FeatureCollection = serde_json::from_reader(reader)?;
        let lines = collection.features.into_iter().filter_map(drivable_line);
        Self::from_lines(lines)
    }

    /// Builds the graph from polylines (each a list of positions), keeping
    /// the largest connected component.
    pub fn from_lines(lines: impl IntoIterator<Item = Vec<LatLng>>) -> anyhow::Result<RoadNetwork> {
        let mut ids: HashMap<(u64, u64), u32> = HashMap::new();
        let mut nodes: Vec<LatLng> = Vec::new();
        let mut edges: Vec<(u32, u32)> = Vec::new();
        for line in lines {
            let mut prev: Option<u32> = None;
            for p in line {
                let key = (p.lat.to_bits(), p.lng.to_bits());
                let id = *ids.entry(key).or_insert_with(|| {
                    nodes.push(p);
                    // Fewer than 4 billion points: the extract has ~200k.
                    (nodes.len() - 1) as u32
                });
                if let Some(a) = prev
                    && a != id
                    && nodes[a as usize].distance_m(nodes[id as usize]) >= MIN_EDGE_M
                {
                    edges.push((a, id));
                }
                prev = Some(id);
            }
        }
        let keep = largest_component(nodes.len(), &edges);
        if keep.iter().filter(|k| **k).count() < 2 {
            bail!("the road network has no connected roads");
        }
        Ok(Self::compact(&nodes, &edges, &keep))
    }

    /// Keeps the nodes marked in `keep` and the edges between them.
    fn compact(nodes: &[LatLng], edges: &[(u32, u32)], keep: &[bool]) -> RoadNetwork {
        let mut remap = vec![u32::MAX; nodes.len()];
        let mut kept = Vec::new();
        for (i, p) in nodes.iter().enumerate() {
            if keep[i] {
                remap[i] = kept.len() as u32;
                kept.push(*p);
            }
        }
        let mut adjacency: Vec<Vec<(u32, f32)>> = vec![Vec::new(); kept.len()];
        for &(a, b) in edges {
            let (a, b) = (remap[a as usize], remap[b as usize]);
            if a == u32::MAX || b == u32::MAX {
                continue;
            }
            let len = kept[a as usize].distance_m(kept[b as usize]) as f32;
            adjacency[a as usize].push((b, len));
            adjacency[b as usize].push((a, len));
        }
        let mut offsets = Vec::with_capacity(kept.len() + 1);
        let mut targets = Vec::new();
        let mut lengths_m = Vec::new();
        offsets.push(0);
        for mut list in adjacency {
            list.sort_by_key(|&(t, _)| t);
            list.dedup_by_key(|&mut (t, _)| t);
            for (t, len) in list {
                targets.push(t);
                lengths_m.push(len);
            }
            offsets.push(targets.len() as u32);
        }
        RoadNetwork {
            nodes: kept,
            offsets,
            targets,
            lengths_m,
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of undirected edges.
    pub fn edge_count(&self) -> usize {
        self.targets.len() / 2
    }

    /// Total road length, km.
    pub fn length_km(&self) -> f64 {
        self.lengths_m.iter().map(|l| f64::from(*l)).sum::<f64>() / 2.0 / 1000.0
    }

    pub fn position(&self, node: u32) -> LatLng {
        self.nodes[node as usize]
    }

    /// Edge indices leaving `node`.
    pub fn edges_from(&self, node: u32) -> std::ops::Range<usize> {
        self.offsets[node as usize] as usize..self.offsets[node as usize + 1] as usize
    }

    pub fn edge_target(&self, edge: usize) -> u32 {
        self.targets[edge]
    }

    pub fn edge_length_m(&self, edge: usize) -> f64 {
        f64::from(self.lengths_m[edge])
    }
}

/// The polyline of a drivable, non-area LineString feature.
fn drivable_line(feature: Feature) -> Option<Vec<LatLng>> {
    let highway = feature.properties.highway?;
    let base = highway.strip_suffix("_link").unwrap_or(&highway);
    if !DRIVABLE.contains(&base) || feature.properties.area.as_deref() == Some("yes") {
        return None;
    }
    let geometry = feature.geometry?;
    if geometry.kind != "LineString" {
        return None;
    }
    let coords = geometry.coordinates.as_array()?;
    coords
        .iter()
        .map(|c| {
            let c = c.as_array()?;
            Some(LatLng {
                lng: c.first()?.as_f64()?,
                lat: c.get(1)?.as_f64()?,
            })
        })
        .collect()
}

/// Marks the nodes of the largest connected component (union-find).
fn largest_component(n: usize, edges: &[(u32, u32)]) -> Vec<bool> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let grand = parent[parent[x as usize] as usize];
            parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    for &(a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra as usize] = rb;
        }
    }
    let mut size = vec![0u32; n];
    let roots: Vec<u32> = (0..n as u32).map(|i| find(&mut parent, i)).collect();
    for &r in &roots {
        size[r as usize] += 1;
    }
    let Some(best) = (0..n).max_by_key(|&r| size[r]) else {
        return Vec::new();
    };
    roots.iter().map(|&r| r as usize == best).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 3 × 3 street grid of 100 m blocks plus a detached segment.
    pub(crate) fn grid() -> RoadNetwork {
        let o = LatLng {
            lat: 57.70,
            lng: 11.97,
        };
        let mut lines = Vec::new();
        for i in 0..3 {
            let f = f64::from(i) * 100.0;
            lines.push((0..3).map(|j| o.offset(f, f64::from(j) * 100.0)).collect());
            lines.push((0..3).map(|j| o.offset(f64::from(j) * 100.0, f)).collect());
        }
        lines.push(vec![o.offset(5000.0, 0.0), o.offset(5000.0, 10.0)]);
        RoadNetwork::from_lines(lines).expect("grid")
    }

    #[test]
    fn keeps_largest_component_only() {
        let net = grid();
        assert_eq!(net.node_count(), 9);
        assert_eq!(net.edge_count(), 12);
        assert!((net.length_km() - 1.2).abs() < 0.01, "{}", net.length_km());
    }

    #[test]
    fn parses_geojson_and_filters_ways() {
        let doc = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"highway":"residential"},
           "geometry":{"type":"LineString","coordinates":[[11.97,57.70],[11.971,57.70],[11.972,57.70]]}},
          {"type":"Feature","properties":{"highway":"primary_link"},
           "geometry":{"type":"LineString","coordinates":[[11.972,57.70],[11.972,57.701]]}},
          {"type":"Feature","properties":{"highway":"footway"},
           "geometry":{"type":"LineString","coordinates":[[11.97,57.70],[11.97,57.71]]}},
          {"type":"Feature","properties":{"highway":"residential","area":"yes"},
           "geometry":{"type":"Polygon","coordinates":[[[11.97,57.70],[11.98,57.70],[11.97,57.70]]]}}
        ]}"#;
        let net = RoadNetwork::from_geojson_reader(doc.as_bytes()).expect("parse");
        assert_eq!(net.node_count(), 4);
        assert_eq!(net.edge_count(), 3);
    }

    #[test]
    fn rejects_empty_network() {
        assert!(RoadNetwork::from_lines(Vec::<Vec<LatLng>>::new()).is_err());
    }
}
