//! HELP text of the metrics this crate records (`/metrics` shows it; every
//! family needs one, `promtool check metrics` fails without). The counters
//! are incremented where things happen; a new one gets its line here.

use metrics::describe_counter;

/// Describes every metric family of the REST layer to the installed
/// recorder. Call once, after installing it.
pub fn describe_metrics() {
    describe_counter!("hexdash_signups_total", "Accounts created, by role");
    describe_counter!(
        "hexdash_logins_total",
        "Login attempts, by outcome (ok, refused, rate_limited)"
    );
    describe_counter!("hexdash_bans_total", "Users banned by an admin");
    describe_counter!("hexdash_orders_placed_total", "Orders placed");
    describe_counter!(
        "hexdash_orders_replayed_total",
        "Order placements answered from an earlier request with the same Idempotency-Key"
    );
    describe_counter!(
        "hexdash_orders_out_of_stock_total",
        "Order placements refused because an item was out of stock"
    );
    describe_counter!(
        "hexdash_order_steps_total",
        "Order status changes applied, by the status reached"
    );
    describe_counter!(
        "hexdash_offer_answers_total",
        "Drivers' answers to offers, by answer and outcome"
    );
    describe_counter!(
        crate::routes::auth::SIGNUPS_RATE_LIMITED,
        "Signups refused with 429: too many from one client address"
    );
    // Charges, refunds and payment retries: described next to the saga
    // that counts them, which also starts their series at zero.
    crate::payments::describe_metrics();
}
