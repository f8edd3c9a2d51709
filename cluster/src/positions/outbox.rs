//! The publishing side: [`Outbox`] is the engine's [`engine::Tap`] (local
//! pings and declarations are appended, encoded, to one buffer per region
//! under a short lock) and [`Outbox::take`] hands the flusher everything
//! gathered since the last flush. The flusher turns it into one pipeline:
//! a `PUBLISH` per region, and on snapshot ticks the regions' snapshot
//! hashes, the active-region list and the drivers' directory.
//!
//! It also remembers the drivers that ping this node (`local`): their
//! region (a driver crossing into another region is announced in both, so
//! a node holding only the old one sees it leave, and is removed from the
//! old snapshot), when it was last heard from (silent ones are swept from
//! the snapshot), and their declared availability (carried on every
//! record, so the newest declaration wins everywhere).

use std::collections::hash_map::Entry;

use engine::cells::{Cell, CellResolution};
use engine::{Applied, Availability, DriverId, Ping, Replica, ReplicaFix};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::Region;
use super::codec;

/// One region's records waiting for the next flush.
#[derive(Debug)]
pub(crate) struct LiveBuf {
    /// What the records' times are relative to (the first one's).
    pub base_ms: i64,
    /// Encoded records ([`codec::put_record`]).
    pub records: Vec<u8>,
    /// How many.
    pub count: usize,
}

/// A driver that pings this node.
#[derive(Clone, Copy, Debug)]
struct Local {
    region: Region,
    seen_at_ms: i64,
    availability: Availability,
    availability_at_ms: i64,
}

/// Records per published message at most: a region's buffer that fills
/// is closed and a new one started, so a burst becomes several messages
/// of about 48 kB (quick for Redis to fan out, for a subscriber to decode)
/// instead of one of megabytes.
pub(crate) const MAX_BATCH_RECORDS: usize = 1_024;

#[derive(Default)]
struct Pending {
    live: FxHashMap<Region, LiveBuf>,
    /// Buffers closed at [`MAX_BATCH_RECORDS`], waiting for the flush.
    full: Vec<(Region, LiveBuf)>,
    live_count: usize,
    /// The latest record per driver per region since the last snapshot
    /// write (coalesced: a driver pinging ten times a second is written
    /// once).
    snapshot: FxHashMap<Region, FxHashMap<DriverId, Replica>>,
    /// Drivers that left a region (or went silent): removed from its
    /// snapshot at the next flush.
    leaving: FxHashMap<Region, Vec<DriverId>>,
    /// Drivers whose directory entry goes (silent).
    gone: Vec<DriverId>,
    /// Declarations made here for drivers that ping elsewhere: sent to
    /// their node, whose records then carry them.
    declarations: Vec<(DriverId, Availability, i64)>,
    local: FxHashMap<DriverId, Local>,
    /// Updates refused because the buffers were full, since the last take.
    dropped: u64,
}

/// What one flush sends.
#[derive(Default)]
pub(crate) struct Flush {
    pub live: FxHashMap<Region, LiveBuf>,
    /// Full buffers, one message each.
    pub full: Vec<(Region, LiveBuf)>,
    pub live_count: usize,
    pub snapshot: FxHashMap<Region, FxHashMap<DriverId, Replica>>,
    pub leaving: FxHashMap<Region, Vec<DriverId>>,
    pub gone: Vec<DriverId>,
    pub declarations: Vec<(DriverId, Availability, i64)>,
    /// Every local driver and its region (snapshot ticks only): the
    /// directory's entries.
    pub directory: Vec<(DriverId, Region)>,
    pub dropped: u64,
}

/// The engine's tap: gathers local writes for the flusher.
pub(crate) struct Outbox {
    resolution: CellResolution,
    presence_timeout_ms: i64,
    max_pending: usize,
    pending: Mutex<Pending>,
}

impl Outbox {
    pub(crate) fn new(
        resolution: CellResolution,
        presence_timeout_ms: i64,
        max_pending: usize,
    ) -> Outbox {
        Outbox {
            resolution,
            presence_timeout_ms,
            max_pending,
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Whether `driver` pings this node.
    pub(crate) fn is_local(&self, driver: DriverId) -> bool {
        self.pending.lock().local.contains_key(&driver)
    }

    /// A declaration made on another node for a driver pinging here: later
    /// records carry it.
    pub(crate) fn declared(&self, driver: DriverId, availability: Availability, at_ms: i64) {
        if let Some(local) = self.pending.lock().local.get_mut(&driver)
            && at_ms > local.availability_at_ms
        {
            local.availability = availability;
            local.availability_at_ms = at_ms;
        }
    }

    /// Everything gathered since the last call. With `snapshot`, also the
    /// coalesced snapshot records, the directory, and the drivers silent
    /// for the presence timeout (forgotten here, removed from Redis).
    pub(crate) fn take(&self, snapshot: bool, now_ms: i64) -> Flush {
        let mut p = self.pending.lock();
        let mut flush = Flush {
            live: std::mem::take(&mut p.live),
            full: std::mem::take(&mut p.full),
            live_count: std::mem::take(&mut p.live_count),
            declarations: std::mem::take(&mut p.declarations),
            dropped: std::mem::take(&mut p.dropped),
            ..Flush::default()
        };
        if snapshot {
            let cutoff = now_ms - self.presence_timeout_ms;
            let Pending {
                local,
                leaving,
                gone,
                ..
            } = &mut *p;
            local.retain(|&driver, l| {
                if l.seen_at_ms > cutoff {
                    return true;
                }
                leaving.entry(l.region).or_default().push(driver);
                gone.push(driver);
                false
            });
            flush.directory = p.local.iter().map(|(&d, l)| (d, l.region)).collect();
            flush.snapshot = std::mem::take(&mut p.snapshot);
            flush.gone = std::mem::take(&mut p.gone);
        }
        flush.leaving = std::mem::take(&mut p.leaving);
        flush
    }

    fn push_live(&self, p: &mut Pending, region: Region, replica: &Replica, now_ms: i64) {
        if p.live_count >= self.max_pending {
            p.dropped += 1;
            return;
        }
        let buf = p.live.entry(region).or_insert_with(|| LiveBuf {
            base_ms: now_ms,
            records: Vec::with_capacity(64 * codec::RECORD_LEN),
            count: 0,
        });
        codec::put_record(&mut buf.records, replica, buf.base_ms);
        buf.count += 1;
        p.live_count += 1;
        if buf.count >= MAX_BATCH_RECORDS
            && let Some(full) = p.live.remove(&region)
        {
            p.full.push((region, full));
        }
    }
}

fn replica_of(ping: &Ping, seen_at_ms: i64, availability: Availability, at_ms: i64) -> Replica {
    Replica {
        driver_id: ping.driver_id,
        fix: Some(ReplicaFix {
            position: ping.position,
            recorded_at_ms: ping.recorded_at_ms,
            heading_deg: ping.heading_deg,
            speed_mps: ping.speed_mps,
            accuracy_m: ping.accuracy_m,
        }),
        seen_at_ms,
        availability,
        availability_at_ms: at_ms,
    }
}

impl engine::Tap for Outbox {
    fn pings(&self, pings: &[Ping], cells: &[Cell], outcomes: &[Applied], now_ms: i64) {
        let mut guard = self.pending.lock();
        let p = &mut *guard;
        for ((ping, &cell), &outcome) in pings.iter().zip(cells).zip(outcomes) {
            if outcome != Applied::Moved {
                continue;
            }
            let region = Region::of_cell(cell, self.resolution);
            let (left, local) = match p.local.entry(ping.driver_id) {
                Entry::Occupied(mut e) => {
                    let l = e.get_mut();
                    let left = (l.region != region).then_some(l.region);
                    l.region = region;
                    l.seen_at_ms = now_ms;
                    (left, *l)
                }
                Entry::Vacant(e) => {
                    let l = *e.insert(Local {
                        region,
                        seen_at_ms: now_ms,
                        availability: Availability::Available,
                        availability_at_ms: 0,
                    });
                    (None, l)
                }
            };
            let replica = replica_of(ping, now_ms, local.availability, local.availability_at_ms);
            self.push_live(p, region, &replica, now_ms);
            if let Some(old) = left {
                self.push_live(p, old, &replica, now_ms);
                p.leaving.entry(old).or_default().push(ping.driver_id);
                if let Some(s) = p.snapshot.get_mut(&old) {
                    s.remove(&ping.driver_id);
                }
            }
            p.snapshot
                .entry(region)
                .or_default()
                .insert(ping.driver_id, replica);
        }
    }

    fn availability(
        &self,
        driver_id: DriverId,
        availability: Availability,
        at_ms: i64,
        fix: Option<(Ping, Cell)>,
    ) {
        let mut guard = self.pending.lock();
        let p = &mut *guard;
        let local = p.local.get_mut(&driver_id).map(|l| {
            l.availability = availability;
            l.availability_at_ms = at_ms;
            *l
        });
        if local.is_none() {
            p.declarations.push((driver_id, availability, at_ms));
        }
        let Some((ping, cell)) = fix else {
            // No position: nobody can place it in a region; the node that
            // holds its connection still learns (the declaration above).
            return;
        };
        let region = local.map_or(Region::of_cell(cell, self.resolution), |l| l.region);
        // A driver pinging elsewhere: no presence from here (seen 0).
        let seen = local.map_or(0, |l| l.seen_at_ms);
        let replica = replica_of(&ping, seen, availability, at_ms);
        self.push_live(p, region, &replica, at_ms);
        if local.is_some() {
            p.snapshot
                .entry(region)
                .or_default()
                .insert(driver_id, replica);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{LatLng, Tap};

    const RES: CellResolution = CellResolution::Five;

    fn ping(driver: DriverId, lat: f64, at: i64) -> (Ping, Cell) {
        let position = LatLng::new(lat, 11.97).unwrap();
        (
            Ping {
                driver_id: driver,
                position,
                recorded_at_ms: at,
                heading_deg: None,
                speed_mps: None,
                accuracy_m: None,
            },
            engine::cells::cell_of(position),
        )
    }

    fn records(buf: &LiveBuf) -> Vec<Replica> {
        let mut bytes = Vec::new();
        codec::batch_header(&mut bytes, "n", buf.base_ms);
        bytes.extend_from_slice(&buf.records);
        codec::Batch::parse(&bytes)
            .unwrap()
            .replicas()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn pings_batch_by_region_and_a_crossing_is_told_to_both() {
        let outbox = Outbox::new(RES, 120_000, 100);
        let (a, b) = (DriverId::new(), DriverId::new());
        let (pa, ca) = ping(a, 57.70, 1_000);
        let (pb, cb) = ping(b, 57.70, 1_000);
        let (stale, cs) = ping(b, 57.70, 900);
        outbox.pings(
            &[pa, pb, stale],
            &[ca, cb, cs],
            &[Applied::Moved, Applied::Moved, Applied::Stale],
            5_000,
        );
        let home = Region::of_cell(ca, RES);
        let flush = outbox.take(true, 5_000);
        assert_eq!(flush.live_count, 2, "the stale ping is not published");
        assert_eq!(flush.live[&home].count, 2);
        assert_eq!(flush.snapshot[&home].len(), 2);
        assert_eq!(flush.directory.len(), 2);
        assert!(outbox.is_local(a));

        // Far north: another region.
        let (far, cf) = ping(a, 59.5, 2_000);
        outbox.pings(&[far], &[cf], &[Applied::Moved], 6_000);
        let away = Region::of_cell(cf, RES);
        assert_ne!(home, away);
        let flush = outbox.take(false, 6_000);
        assert_eq!(
            records(&flush.live[&home])[0].driver_id,
            a,
            "told to the old"
        );
        assert_eq!(records(&flush.live[&away])[0].driver_id, a, "and the new");
        assert_eq!(flush.leaving[&home], vec![a]);
        assert!(flush.snapshot.is_empty(), "written on snapshot ticks only");
    }

    #[test]
    fn declarations_ride_on_later_records_and_silent_drivers_are_swept() {
        let outbox = Outbox::new(RES, 10_000, 100);
        let local = DriverId::new();
        let elsewhere = DriverId::new();
        let (p, c) = ping(local, 57.7, 1_000);
        outbox.pings(&[p], &[c], &[Applied::Moved], 1_000);
        outbox.availability(local, Availability::Offline, 1_500, Some((p, c)));
        outbox.availability(elsewhere, Availability::Offline, 1_600, None);
        let flush = outbox.take(false, 2_000);
        assert_eq!(
            flush.declarations,
            vec![(elsewhere, Availability::Offline, 1_600)]
        );
        let (p2, c2) = ping(local, 57.7001, 2_000);
        outbox.pings(&[p2], &[c2], &[Applied::Moved], 2_000);
        let flush = outbox.take(false, 2_000);
        let sent = records(flush.live.values().next().unwrap());
        assert_eq!(
            (sent[0].availability, sent[0].availability_at_ms),
            (Availability::Offline, 1_500)
        );
        // Declared elsewhere later: carried from then on.
        outbox.declared(local, Availability::Available, 1_900);
        let flush = outbox.take(true, 11_000);
        assert_eq!(
            flush.snapshot.values().next().unwrap()[&local].availability,
            Availability::Offline,
            "the snapshot holds the record as published"
        );
        // Silent past the timeout: swept.
        let flush = outbox.take(true, 12_001);
        assert_eq!(flush.gone, vec![local]);
        assert!(!outbox.is_local(local));
        assert_eq!(flush.leaving.values().next().unwrap(), &vec![local]);
    }

    #[test]
    fn a_burst_is_cut_into_messages_of_bounded_size() {
        let outbox = Outbox::new(RES, 120_000, 10_000);
        let n = MAX_BATCH_RECORDS * 2 + 5;
        let pings: Vec<(Ping, Cell)> = (0..n).map(|_| ping(DriverId::new(), 57.7, 1)).collect();
        let (p, c): (Vec<Ping>, Vec<Cell>) = pings.into_iter().unzip();
        outbox.pings(&p, &c, &vec![Applied::Moved; n], 10);
        let flush = outbox.take(false, 10);
        assert_eq!(flush.full.len(), 2);
        assert!(flush.full.iter().all(|(_, b)| b.count == MAX_BATCH_RECORDS));
        assert_eq!(flush.live.values().map(|b| b.count).sum::<usize>(), 5);
        assert_eq!(flush.live_count, n);
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let outbox = Outbox::new(RES, 120_000, 2);
        let pings: Vec<(Ping, Cell)> = (0..5).map(|_| ping(DriverId::new(), 57.7, 1)).collect();
        let (p, c): (Vec<Ping>, Vec<Cell>) = pings.into_iter().unzip();
        outbox.pings(&p, &c, &[Applied::Moved; 5], 10);
        let flush = outbox.take(false, 10);
        assert_eq!((flush.live_count, flush.dropped), (2, 3));
    }
}
