//! [`Trail`]: one driver's recent path, pure and bounded: at most one fix
//! per `min_spacing_ms` (later fixes inside the spacing are dropped: the
//! downsampling), none older than `window_ms` before the newest, so at
//! most `window_ms / min_spacing_ms + 1` points whatever the ping rate.
//! Time is the fixes' own (device) time; nothing here reads a clock.

use std::collections::VecDeque;

use engine::LatLng;

/// Degrees are kept as integers of this many per degree (1e-7°: about a
/// centimetre), half the size of two `f64`s.
const UNITS_PER_DEGREE: f64 = 1e7;

/// One kept fix: 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crumb {
    /// Degrees north × 1e7 (fits: ±9e8).
    lat_e7: i32,
    /// Degrees east × 1e7 (fits: ±1.8e9 < 2^31).
    lng_e7: i32,
    /// The fix's device time, Unix ms.
    pub at_ms: i64,
}

impl Crumb {
    /// `position` at `at_ms`, rounded to 1e-7°.
    pub fn new(position: LatLng, at_ms: i64) -> Crumb {
        // A `LatLng` is within ±90/±180, so the products fit in i32.
        Crumb {
            lat_e7: (position.lat * UNITS_PER_DEGREE).round() as i32,
            lng_e7: (position.lng * UNITS_PER_DEGREE).round() as i32,
            at_ms,
        }
    }

    /// Degrees north.
    pub fn lat(self) -> f64 {
        f64::from(self.lat_e7) / UNITS_PER_DEGREE
    }

    /// Degrees east.
    pub fn lng(self) -> f64 {
        f64::from(self.lng_e7) / UNITS_PER_DEGREE
    }

    /// The position (in range by construction; clamped should rounding
    /// ever say otherwise).
    pub fn position(self) -> LatLng {
        LatLng::new(self.lat(), self.lng()).unwrap_or_else(|_| {
            LatLng::new(
                self.lat().clamp(-90.0, 90.0),
                self.lng().clamp(-180.0, 180.0),
            )
            .unwrap_or(LatLng { lat: 0.0, lng: 0.0 })
        })
    }
}

/// The bounds every trail keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// How far back from the newest fix points are kept, ms.
    pub window_ms: i64,
    /// The least time between two kept fixes, ms (at least 1).
    pub min_spacing_ms: i64,
}

impl Bounds {
    /// The most points a trail can hold under these bounds.
    pub fn max_points(self) -> usize {
        usize::try_from(self.window_ms / self.min_spacing_ms.max(1) + 1).unwrap_or(usize::MAX)
    }
}

/// One driver's recent path, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Trail {
    crumbs: VecDeque<Crumb>,
    /// When the driver was last heard from (server time, Unix ms): the
    /// trail is forgotten when this is long ago.
    pub last_seen_ms: i64,
}

impl Trail {
    /// Keeps `crumb` if it is at least `min_spacing_ms` after the newest
    /// kept one (an older or closer fix is dropped: downsampling), then
    /// drops what falls out of the window. Whether it was kept.
    pub fn push(&mut self, crumb: Crumb, bounds: Bounds) -> bool {
        if let Some(last) = self.crumbs.back()
            && crumb.at_ms < last.at_ms.saturating_add(bounds.min_spacing_ms.max(1))
        {
            return false;
        }
        self.crumbs.push_back(crumb);
        let oldest_kept = crumb.at_ms.saturating_sub(bounds.window_ms);
        while self.crumbs.front().is_some_and(|c| c.at_ms < oldest_kept) {
            self.crumbs.pop_front();
        }
        // The spacing and the window bound the length already; this keeps
        // the bound should they ever disagree.
        while self.crumbs.len() > bounds.max_points() {
            self.crumbs.pop_front();
        }
        true
    }

    /// Points kept.
    pub fn len(&self) -> usize {
        self.crumbs.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.crumbs.is_empty()
    }

    /// The kept points recorded from `from_ms` to `to_ms` inclusive,
    /// oldest first.
    pub fn between(&self, from_ms: i64, to_ms: i64) -> Vec<Crumb> {
        // Kept in time order: find the start by binary search.
        let start = self.crumbs.partition_point(|c| c.at_ms < from_ms);
        self.crumbs
            .range(start..)
            .take_while(|c| c.at_ms <= to_ms)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        window_ms: 60_000,
        min_spacing_ms: 5_000,
    };

    fn crumb(at_ms: i64) -> Crumb {
        Crumb::new(LatLng::new(57.7, 11.97).unwrap(), at_ms)
    }

    fn times(trail: &Trail) -> Vec<i64> {
        trail
            .between(i64::MIN, i64::MAX)
            .iter()
            .map(|c| c.at_ms)
            .collect()
    }

    #[test]
    fn keeps_one_fix_per_spacing_and_drops_late_or_close_ones() {
        let mut trail = Trail::default();
        let check = |trail: &mut Trail, at_ms: i64, kept: bool| {
            assert_eq!(trail.push(crumb(at_ms), BOUNDS), kept, "{at_ms}");
        };
        check(&mut trail, 1_000, true);
        check(&mut trail, 2_000, false); // inside the spacing
        check(&mut trail, 5_999, false);
        check(&mut trail, 6_000, true); // exactly the spacing
        check(&mut trail, 500, false); // older than the newest
        check(&mut trail, 6_000, false); // the same time again
        check(&mut trail, 20_000, true); // a gap is fine
        assert_eq!(times(&trail), [1_000, 6_000, 20_000]);
    }

    #[test]
    fn a_second_of_pings_for_hours_stays_within_the_bound() {
        let mut trail = Trail::default();
        let max = BOUNDS.max_points();
        assert_eq!(max, 13);
        // One ping a second for three hours, some jitter in the times.
        for i in 0..3 * 3_600 {
            let at_ms = 1_700_000_000_000 + i * 1_000 + (i * 37) % 200;
            trail.push(crumb(at_ms), BOUNDS);
            assert!(trail.len() <= max, "{} points at {i}", trail.len());
        }
        let kept = times(&trail);
        let newest = *kept.last().unwrap();
        assert!(kept.iter().all(|&t| t >= newest - BOUNDS.window_ms));
        assert!(
            kept.windows(2)
                .all(|w| w[1] - w[0] >= BOUNDS.min_spacing_ms)
        );
        // Downsampled, not just cut: one ping in five or six (jitter
        // moves a ping's time by under 0.2 s), so at least one point per
        // 6.2 s of the window.
        assert!(kept.len() >= 10, "{kept:?}");
        assert!(kept.windows(2).all(|w| w[1] - w[0] <= 6_200), "{kept:?}");
    }

    #[test]
    fn the_window_drops_old_points_as_new_ones_come() {
        let mut trail = Trail::default();
        for at_ms in (0..=120_000).step_by(10_000) {
            trail.push(crumb(at_ms), BOUNDS);
        }
        assert_eq!(
            times(&trail),
            [60_000, 70_000, 80_000, 90_000, 100_000, 110_000, 120_000]
        );
    }

    #[test]
    fn between_is_inclusive_and_in_order() {
        let mut trail = Trail::default();
        for at_ms in (0..=50_000).step_by(5_000) {
            trail.push(crumb(at_ms), BOUNDS);
        }
        let got: Vec<i64> = trail
            .between(10_000, 25_000)
            .iter()
            .map(|c| c.at_ms)
            .collect();
        assert_eq!(got, [10_000, 15_000, 20_000, 25_000]);
        assert!(trail.between(51_000, 60_000).is_empty());
        assert_eq!(trail.between(i64::MIN, 0).len(), 1);
    }

    #[test]
    fn positions_survive_to_a_centimetre() {
        for (lat, lng) in [
            (57.708_912_3, 11.974_645_6),
            (-89.999_999_9, -179.999_999_9),
            (90.0, 180.0),
        ] {
            let c = Crumb::new(LatLng::new(lat, lng).unwrap(), 0);
            assert!((c.lat() - lat).abs() < 1e-7, "{lat}");
            assert!((c.lng() - lng).abs() < 1e-7, "{lng}");
            assert_eq!(c.position(), LatLng::new(c.lat(), c.lng()).unwrap());
        }
        assert_eq!(std::mem::size_of::<Crumb>(), 16);
    }
}
