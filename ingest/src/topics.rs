//! MQTT topic names: the wire names of the driver side of the broker, in one
//! place. A driver publishes its position to `drivers/{driver_id}/location`
//! and receives offers on `drivers/{driver_id}/offers`; nothing else is open
//! to it (see `mqtt::acl`).

use engine::DriverId;

/// First level of every driver topic.
pub const DRIVERS_PREFIX: &str = "drivers/";
/// Last level of the topic a driver publishes its pings to.
pub const LOCATION_SUFFIX: &str = "/location";
/// Last level of the topic a driver receives its offers on.
pub const OFFERS_SUFFIX: &str = "/offers";
/// The filter the in-process consumer subscribes to: every driver's pings.
pub const ALL_LOCATIONS: &str = "drivers/+/location";

/// The shared subscription an ingest node makes at an external broker:
/// `$share/{group}/drivers/+/location` (every driver's pings, each handed
/// to one member of `group`).
pub fn shared_locations(group: &str) -> String {
    format!("$share/{group}/{ALL_LOCATIONS}")
}

/// `drivers/{driver_id}/location`.
pub fn location(driver_id: DriverId) -> String {
    format!("{DRIVERS_PREFIX}{driver_id}{LOCATION_SUFFIX}")
}

/// `drivers/{driver_id}/offers`.
pub fn offers(driver_id: DriverId) -> String {
    format!("{DRIVERS_PREFIX}{driver_id}{OFFERS_SUFFIX}")
}

/// The driver named by a `drivers/{driver_id}/location` topic, if it is one.
pub fn parse_location(topic: &[u8]) -> Option<DriverId> {
    let topic = std::str::from_utf8(topic).ok()?;
    let id = topic
        .strip_prefix(DRIVERS_PREFIX)?
        .strip_suffix(LOCATION_SUFFIX)?;
    // `Uuid::parse_str` also accepts braced and urn forms; only the canonical
    // hyphenated form is a topic we hand out.
    if id.len() != 36 {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_round_trip() {
        let id = DriverId::new();
        assert_eq!(parse_location(location(id).as_bytes()), Some(id));
        assert_eq!(offers(id), format!("drivers/{id}/offers"));
        assert_eq!(
            shared_locations("hexdash"),
            "$share/hexdash/drivers/+/location"
        );
    }

    #[test]
    fn parse_rejects_other_shapes() {
        let id = DriverId::new();
        for topic in [
            format!("drivers/{id}/offers"),
            format!("drivers/{id}/location/x"),
            format!("drivers/{}/location", id.as_uuid().simple()),
            format!("x/drivers/{id}/location"),
            "drivers/not-a-uuid/location".to_owned(),
            "drivers//location".to_owned(),
        ] {
            assert_eq!(parse_location(topic.as_bytes()), None, "{topic}");
        }
        assert_eq!(parse_location(&[0xff, 0xfe]), None);
    }
}
