//! From OpenStreetMap tags to what routing needs: which `highway` classes a
//! car may drive, their speeds, `maxspeed` and `oneway`.

/// A car-drivable OSM `highway` class. `_link` ramps are their own classes
/// because they are driven slower than the road they connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RoadClass {
    /// `motorway`
    Motorway = 0,
    /// `motorway_link`
    MotorwayLink = 1,
    /// `trunk`
    Trunk = 2,
    /// `trunk_link`
    TrunkLink = 3,
    /// `primary`
    Primary = 4,
    /// `primary_link`
    PrimaryLink = 5,
    /// `secondary`
    Secondary = 6,
    /// `secondary_link`
    SecondaryLink = 7,
    /// `tertiary`
    Tertiary = 8,
    /// `tertiary_link`
    TertiaryLink = 9,
    /// `unclassified`
    Unclassified = 10,
    /// `residential`
    Residential = 11,
    /// `living_street`
    LivingStreet = 12,
    /// `service`
    Service = 13,
}

impl RoadClass {
    /// Every class, in code order (`ALL[c as usize] == c`).
    pub const ALL: [RoadClass; 14] = [
        RoadClass::Motorway,
        RoadClass::MotorwayLink,
        RoadClass::Trunk,
        RoadClass::TrunkLink,
        RoadClass::Primary,
        RoadClass::PrimaryLink,
        RoadClass::Secondary,
        RoadClass::SecondaryLink,
        RoadClass::Tertiary,
        RoadClass::TertiaryLink,
        RoadClass::Unclassified,
        RoadClass::Residential,
        RoadClass::LivingStreet,
        RoadClass::Service,
    ];

    /// The `highway` tag value of the class (as [`RoadClass::from_highway`]
    /// reads it).
    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Motorway => "motorway",
            RoadClass::MotorwayLink => "motorway_link",
            RoadClass::Trunk => "trunk",
            RoadClass::TrunkLink => "trunk_link",
            RoadClass::Primary => "primary",
            RoadClass::PrimaryLink => "primary_link",
            RoadClass::Secondary => "secondary",
            RoadClass::SecondaryLink => "secondary_link",
            RoadClass::Tertiary => "tertiary",
            RoadClass::TertiaryLink => "tertiary_link",
            RoadClass::Unclassified => "unclassified",
            RoadClass::Residential => "residential",
            RoadClass::LivingStreet => "living_street",
            RoadClass::Service => "service",
        }
    }

    /// The class of a `highway` tag value, `None` when cars do not use it
    /// (footway, cycleway, path, steps, construction, …).
    pub fn from_highway(value: &str) -> Option<RoadClass> {
        Some(match value {
            "motorway" => RoadClass::Motorway,
            "motorway_link" => RoadClass::MotorwayLink,
            "trunk" => RoadClass::Trunk,
            "trunk_link" => RoadClass::TrunkLink,
            "primary" => RoadClass::Primary,
            "primary_link" => RoadClass::PrimaryLink,
            "secondary" => RoadClass::Secondary,
            "secondary_link" => RoadClass::SecondaryLink,
            "tertiary" => RoadClass::Tertiary,
            "tertiary_link" => RoadClass::TertiaryLink,
            "unclassified" => RoadClass::Unclassified,
            "residential" => RoadClass::Residential,
            "living_street" => RoadClass::LivingStreet,
            "service" => RoadClass::Service,
            _ => return None,
        })
    }

    /// The class stored under `code` in a graph file.
    pub fn from_code(code: u8) -> Option<RoadClass> {
        RoadClass::ALL.get(usize::from(code)).copied()
    }

    /// Speed when the way has no usable `maxspeed`, km/h. Urban defaults
    /// (Swedish and most European town limits: 50 on main roads, 30 in
    /// residential streets, walking pace in living streets), a little
    /// under the limit where traffic and junctions slow cars down.
    pub fn default_speed_kmh(self) -> u8 {
        match self {
            RoadClass::Motorway => 90,
            RoadClass::MotorwayLink => 50,
            RoadClass::Trunk => 70,
            RoadClass::TrunkLink => 40,
            RoadClass::Primary => 50,
            RoadClass::PrimaryLink => 40,
            RoadClass::Secondary => 50,
            RoadClass::SecondaryLink => 40,
            RoadClass::Tertiary => 40,
            RoadClass::TertiaryLink => 30,
            RoadClass::Unclassified => 40,
            RoadClass::Residential => 30,
            RoadClass::LivingStreet => 7,
            RoadClass::Service => 15,
        }
    }

    /// Whether OSM implies `oneway=yes` for the class when the way has no
    /// `oneway` tag (motorways and their ramps).
    pub fn implied_oneway(self) -> bool {
        matches!(self, RoadClass::Motorway | RoadClass::MotorwayLink)
    }
}

/// Highest `maxspeed` taken at face value, km/h; anything above is a typo.
const MAX_SPEED_KMH: f64 = 150.0;

/// Kilometres per mile.
const KM_PER_MILE: f64 = 1.609_344;

/// Parses an OSM `maxspeed` value to km/h: `"50"`, `"50 km/h"`, `"50kmh"`,
/// `"30 mph"`. Junk (`"signals"`, `"none"`, `"SE:urban"`, `"0"`, values over
/// 150 km/h) gives `None`, and the class default applies.
pub fn parse_maxspeed(value: &str) -> Option<u8> {
    let value = value.trim();
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number: f64 = value[..digits_end].parse().ok()?;
    let unit = value[digits_end..].trim().to_ascii_lowercase();
    let kmh = match unit.as_str() {
        "" | "km/h" | "kmh" | "kph" => number,
        "mph" => number * KM_PER_MILE,
        _ => return None,
    };
    // In range, so the cast is exact after rounding.
    (1.0..=MAX_SPEED_KMH)
        .contains(&kmh)
        .then(|| kmh.round() as u8)
}

/// Which ways along a way's digitised direction traffic may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directions {
    /// Along the order of the way's points.
    pub forward: bool,
    /// Against it.
    pub backward: bool,
}

/// Directions from the `oneway` and `junction` tags: `yes`/`1`/`true` one
/// way along the geometry, `-1`/`reverse` against it, `no`/`false`/`0` both;
/// without a tag, motorways, their ramps and roundabouts are one-way.
/// `oneway=reversible` (direction changes by time of day) is closed to
/// routing, as OSRM does.
pub fn directions(class: RoadClass, oneway: Option<&str>, junction: Option<&str>) -> Directions {
    let both = Directions {
        forward: true,
        backward: true,
    };
    let along = Directions {
        forward: true,
        backward: false,
    };
    match oneway.map(str::trim) {
        Some("yes" | "1" | "true") => along,
        Some("-1" | "reverse") => Directions {
            forward: false,
            backward: true,
        },
        Some("no" | "false" | "0") => both,
        Some("reversible" | "alternating") => Directions {
            forward: false,
            backward: false,
        },
        _ if class.implied_oneway() || matches!(junction, Some("roundabout" | "circular")) => along,
        _ => both,
    }
}

/// Values of `access`-like tags that close a way to cars. `private` and
/// `delivery` stay open: couriers drive up to doors.
const CLOSED_ACCESS: &[&str] = &["no", "agricultural", "forestry", "emergency", "psv", "bus"];

/// The routing view of an OSM way from its tags (`tag(key)` gives a tag's
/// value), `None` when cars may not drive it: not a drivable `highway`, an
/// area (`area=yes`), or closed by the most specific of `motorcar`,
/// `motor_vehicle`, `vehicle`, `access`.
pub fn way_from_tags<'a>(
    tag: impl Fn(&str) -> Option<&'a str>,
    points: Vec<crate::LatLng>,
) -> Option<crate::Way> {
    let class = RoadClass::from_highway(tag("highway")?)?;
    if tag("area") == Some("yes") {
        return None;
    }
    let access = ["motorcar", "motor_vehicle", "vehicle", "access"]
        .into_iter()
        .find_map(&tag);
    if access.is_some_and(|a| CLOSED_ACCESS.contains(&a)) {
        return None;
    }
    let speed_kmh = tag("maxspeed")
        .and_then(parse_maxspeed)
        .unwrap_or(class.default_speed_kmh());
    Some(crate::Way {
        class,
        speed_kmh,
        directions: directions(class, tag("oneway"), tag("junction")),
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxspeed_values() {
        let check = |input: &str, expected: Option<u8>| {
            assert_eq!(parse_maxspeed(input), expected, "maxspeed {input:?}");
        };
        check("50", Some(50));
        check(" 70 ", Some(70));
        check("50 km/h", Some(50));
        check("50km/h", Some(50));
        check("40 kmh", Some(40));
        check("30 mph", Some(48));
        check("20mph", Some(32));
        check("7.5", Some(8));
        check("", None);
        check("signals", None);
        check("none", None);
        check("SE:urban", None);
        check("50;30", None);
        check("0", None);
        check("999", None);
        check("30 knots", None);
    }

    #[test]
    fn oneway_tags() {
        let check = |class, oneway, junction, expected: (bool, bool)| {
            let d = directions(class, oneway, junction);
            assert_eq!(
                (d.forward, d.backward),
                expected,
                "{class:?} {oneway:?} {junction:?}"
            );
        };
        use RoadClass::*;
        check(Residential, None, None, (true, true));
        check(Residential, Some("yes"), None, (true, false));
        check(Residential, Some("1"), None, (true, false));
        check(Residential, Some("true"), None, (true, false));
        check(Residential, Some("-1"), None, (false, true));
        check(Residential, Some("no"), None, (true, true));
        check(Motorway, None, None, (true, false));
        check(MotorwayLink, None, None, (true, false));
        check(Motorway, Some("no"), None, (true, true));
        check(Primary, None, Some("roundabout"), (true, false));
        check(Primary, Some("reversible"), None, (false, false));
    }

    #[test]
    fn ways_from_tags() {
        let tags = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
        };
        let w = way_from_tags(
            tags(&[("highway", "primary"), ("maxspeed", "70")]),
            Vec::new(),
        )
        .unwrap();
        assert_eq!((w.class, w.speed_kmh), (RoadClass::Primary, 70));
        let w = way_from_tags(
            tags(&[("highway", "residential"), ("maxspeed", "x")]),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(w.speed_kmh, 30);
        assert!(way_from_tags(tags(&[("highway", "footway")]), Vec::new()).is_none());
        assert!(
            way_from_tags(
                tags(&[("highway", "service"), ("access", "no")]),
                Vec::new()
            )
            .is_none()
        );
        let open = tags(&[
            ("highway", "service"),
            ("access", "no"),
            ("motor_vehicle", "yes"),
        ]);
        assert!(way_from_tags(open, Vec::new()).is_some());
        assert!(
            way_from_tags(tags(&[("highway", "service"), ("area", "yes")]), Vec::new()).is_none()
        );
    }

    #[test]
    fn class_codes_round_trip() {
        for class in RoadClass::ALL {
            assert_eq!(RoadClass::from_code(class as u8), Some(class));
        }
        assert_eq!(RoadClass::from_code(14), None);
        assert_eq!(RoadClass::from_highway("footway"), None);
    }
}
