// The live board (`GET /v1/admin/console/board`), polled: open orders,
// alerts and the server's counters, with rates derived from two readings
// of the totals. Restaurants come from the admin listing, paged.

const RESTAURANT_PAGES = 50;

export class Board {
  constructor(api) {
    this.api = api;
    this.at = 0;
    this.orders = [];
    this.byId = new Map();
    this.byDriver = new Map();
    this.alerts = [];
    this.counters = null;
    this.rates = { pingsPerS: null, ordersPerMin: null };
    this.last = null;
    this.restaurants = [];
  }

  async refresh() {
    const board = await this.api.get("/v1/admin/console/board");
    const c = board.counters;
    if (this.last && board.at_ms > this.last.at) {
      const dt = (board.at_ms - this.last.at) / 1000;
      this.rates = {
        pingsPerS: (c.pings_applied_total - this.last.pings) / dt,
        ordersPerMin: ((c.orders_opened_total - this.last.orders) / dt) * 60,
      };
    }
    this.last = { at: board.at_ms, pings: c.pings_applied_total, orders: c.orders_opened_total };
    this.at = board.at_ms;
    this.orders = board.orders;
    this.alerts = board.alerts;
    this.counters = c;
    this.byId = new Map(board.orders.map((o) => [o.order_id, o]));
    this.byDriver = new Map(board.orders.filter((o) => o.driver_id).map((o) => [o.driver_id, o]));
    return board;
  }

  async loadRestaurants() {
    const all = [];
    let cursor = null;
    for (let page = 0; page < RESTAURANT_PAGES; page++) {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const r = await this.api.get(`/v1/admin/restaurants?limit=100${q}`);
      all.push(...r.restaurants);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    this.restaurants = all;
  }
}
