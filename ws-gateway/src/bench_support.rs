//! Benchmark access to the fan-out (hidden from the docs; not an API): a
//! gateway whose clients are registered without sockets, so `bench` can
//! time what one engine batch costs the fan-out task (index lookup, box
//! checks, mailbox pushes) and what the writers then spend encoding frames.

use std::sync::Arc;

use auth::{Principal, Role, Tokens};
use engine::cells::fanout_cover;
use engine::{BBox, Moved, OrderTrack, UserId};

use crate::hub::MAX_AREA_CELLS;
use crate::mailbox::{Batch, Mailbox};
use crate::{Config, Gateway, fanout, protocol};

pub struct FanoutBench {
    gateway: Gateway,
    mailboxes: Vec<Arc<Mailbox>>,
    batch: Batch,
}

impl FanoutBench {
    /// A gateway on `engine` with default settings and no clients.
    pub fn new(engine: engine::Handle) -> Self {
        let tokens = Tokens::new(b"bench", 60);
        Self {
            gateway: Gateway::new(Config::default(), engine, tokens),
            mailboxes: Vec::new(),
            batch: Batch::default(),
        }
    }

    fn add_client(&mut self, role: Role) -> u64 {
        let shared = &self.gateway.shared;
        let id = self.mailboxes.len() as u64 + 1;
        let mailbox = Arc::new(Mailbox::new(shared.config.mailbox_limits()));
        let principal = Principal {
            // Ids from the client's number: benchmarks repeat exactly, and
            // nothing here reads a clock.
            user_id: UserId::from(uuid::Uuid::from_u64_pair(0, id)),
            role,
        };
        // The gateway is not closing: registration cannot fail.
        let _ = shared.hub.lock().add_client(id, principal, mailbox.clone());
        self.mailboxes.push(mailbox);
        id
    }

    /// Registers a dispatcher watching `bbox`, indexed as a subscription
    /// over the socket would be.
    pub fn watch_area(&mut self, bbox: BBox) {
        let id = self.add_client(Role::Admin);
        let cover = fanout_cover(bbox, MAX_AREA_CELLS);
        let _ = self.gateway.shared.hub.lock().watch_area(id, bbox, cover);
    }

    /// Registers an admin watching `track`'s order (as a customer's app
    /// watches its own).
    pub fn watch_order(&mut self, track: &OrderTrack) {
        let id = self.add_client(Role::Admin);
        let _ = self.gateway.shared.hub.lock().watch_order(id, track);
    }

    /// Hands one batch of moves to the fan-out, as its task does.
    pub fn deliver(&self, moves: &[Moved]) {
        fanout::on_moves(&self.gateway.shared, moves);
    }

    /// Empties every mailbox as the writers would, encoding each client's
    /// frames; returns the bytes that would go out.
    pub fn drain(&mut self) -> usize {
        let mut bytes = 0;
        for mailbox in &self.mailboxes {
            mailbox.take(&mut self.batch);
            bytes += self
                .batch
                .control
                .iter()
                .chain(&self.batch.locations)
                .map(|m| m.text.len())
                .sum::<usize>();
            if self.batch.area_due {
                bytes += protocol::drivers(&self.batch.area).text.len();
            }
            self.batch.clear();
        }
        bytes
    }
}
