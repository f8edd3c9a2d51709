//! Reading map data and graph files: the only module of the crate that
//! touches the file system. GeoJSON (plain or gzip-compressed) of OSM ways,
//! as Overpass exports them, and with the `pbf` feature `.osm.pbf`
//! extracts.

use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::format;
use crate::geo::LatLng;
use crate::graph::{RoadGraph, Way};
use crate::tags::way_from_tags;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a graph file written by [`write_graph`].
pub fn read_graph(path: &Path) -> Result<RoadGraph, Error> {
    format::decode(&std::fs::read(path).map_err(io_error(path))?)
}

/// Writes a graph file.
pub fn write_graph(path: &Path, graph: &RoadGraph) -> Result<(), Error> {
    std::fs::write(path, format::encode(graph)).map_err(io_error(path))
}

/// Reads the drivable ways of a map file: `.pbf` by extension, anything
/// else as GeoJSON (gzip-compressed or not, told by its first bytes).
pub fn read_ways(path: &Path) -> Result<Vec<Way>, Error> {
    if path.extension().is_some_and(|e| e == "pbf") {
        return read_pbf(path);
    }
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut json)
            .map_err(io_error(path))?;
        ways_from_geojson(&json)
    } else {
        ways_from_geojson(&bytes)
    }
}

/// The drivable ways of a GeoJSON FeatureCollection: LineString features
/// with OSM tags as properties (other geometries are skipped).
pub fn ways_from_geojson(json: &[u8]) -> Result<Vec<Way>, Error> {
    let root: Value =
        serde_json::from_reader(BufReader::new(json)).map_err(|e| Error::GeoJson(e.to_string()))?;
    let features = root
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::GeoJson("no `features` array".to_owned()))?;
    let mut ways = Vec::new();
    for feature in features {
        let geometry = &feature["geometry"];
        if geometry["type"].as_str() != Some("LineString") {
            continue;
        }
        let Some(coords) = geometry["coordinates"].as_array() else {
            continue;
        };
        let points: Option<Vec<LatLng>> = coords
            .iter()
            .map(|c| LatLng::new(c.get(1)?.as_f64()?, c.get(0)?.as_f64()?))
            .collect();
        let Some(points) = points else { continue };
        let properties = &feature["properties"];
        if let Some(way) = way_from_tags(|k| properties.get(k).and_then(Value::as_str), points) {
            ways.push(way);
        }
    }
    Ok(ways)
}

/// The drivable ways of an `.osm.pbf` extract: a first pass collects the
/// drivable ways and the nodes they need, a second pass their positions,
/// so memory holds only road nodes, not every node of the extract.
#[cfg(feature = "pbf")]
pub fn read_pbf(path: &Path) -> Result<Vec<Way>, Error> {
    use osmpbf::{Element, ElementReader};
    use rustc_hash::{FxHashMap, FxHashSet};

    let pbf = |e: osmpbf::Error| Error::Pbf(e.to_string());
    let mut raw: Vec<(Way, Vec<i64>)> = Vec::new();
    ElementReader::from_path(path)
        .map_err(pbf)?
        .for_each(|element| {
            if let Element::Way(w) = element {
                let tags: Vec<(&str, &str)> = w.tags().collect();
                let tag = |k: &str| tags.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                if let Some(way) = way_from_tags(tag, Vec::new()) {
                    raw.push((way, w.refs().collect()));
                }
            }
        })
        .map_err(pbf)?;
    let needed: FxHashSet<i64> = raw
        .iter()
        .flat_map(|(_, refs)| refs.iter().copied())
        .collect();
    let mut positions: FxHashMap<i64, LatLng> = FxHashMap::default();
    ElementReader::from_path(path)
        .map_err(pbf)?
        .for_each(|element| {
            let (id, lat, lng) = match element {
                Element::Node(n) => (n.id(), n.lat(), n.lon()),
                Element::DenseNode(n) => (n.id(), n.lat(), n.lon()),
                _ => return,
            };
            if needed.contains(&id) {
                positions.insert(id, LatLng { lat, lng });
            }
        })
        .map_err(pbf)?;
    // A way cut by the extract's boundary keeps its inside parts, each a
    // way of its own (joining them would draw a road across the gap).
    let mut ways = Vec::with_capacity(raw.len());
    for (way, refs) in raw {
        let points: Vec<Option<LatLng>> =
            refs.iter().map(|id| positions.get(id).copied()).collect();
        for run in points.split(Option::is_none) {
            if run.len() >= 2 {
                ways.push(Way {
                    points: run.iter().flatten().copied().collect(),
                    ..way.clone()
                });
            }
        }
    }
    Ok(ways)
}

/// Without the `pbf` feature `.osm.pbf` files are refused.
#[cfg(not(feature = "pbf"))]
pub fn read_pbf(path: &Path) -> Result<Vec<Way>, Error> {
    Err(Error::Pbf(format!(
        "{}: built without the `pbf` feature",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geojson_features_become_ways() {
        let json = br#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"highway": "residential", "oneway": "-1"},
             "geometry": {"type": "LineString", "coordinates": [[11.97, 57.70], [11.98, 57.70]]}},
            {"type": "Feature", "properties": {"highway": "footway"},
             "geometry": {"type": "LineString", "coordinates": [[11.97, 57.70], [11.98, 57.71]]}},
            {"type": "Feature", "properties": {"highway": "service"},
             "geometry": {"type": "Polygon", "coordinates": [[[11.97, 57.70], [11.98, 57.71], [11.97, 57.70]]]}}
        ]}"#;
        let ways = ways_from_geojson(json).unwrap();
        assert_eq!(ways.len(), 1);
        assert_eq!(
            ways[0].points[0],
            LatLng {
                lat: 57.70,
                lng: 11.97
            }
        );
        assert!(!ways[0].directions.forward && ways[0].directions.backward);
        assert!(matches!(
            ways_from_geojson(b"[1, 2]"),
            Err(Error::GeoJson(_))
        ));
        assert!(matches!(ways_from_geojson(b"{"), Err(Error::GeoJson(_))));
    }
}
