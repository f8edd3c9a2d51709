// The side panels: alerts, open orders, couriers, and the selected order
// or courier with its interventions. Interventions call the same REST
// routes any admin client uses; their answers (or refusals, with the
// server's code) are shown in the panel and the board is read again at
// once, so the change is visible live.

import { ApiError } from "./api.js";

/** Couriers listed at most (busy first): the map shows them all. */
const COURIER_ROWS = 100;
const STATUS_ORDER = { busy: 0, available: 1, offline: 2 };

export function short(id) {
  return id ? id.slice(-6) : "–";
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

export class Panels {
  /** `ctx`: {api, board, fleet, select(kind, id), refresh()}. */
  constructor(ctx) {
    this.ctx = ctx;
    this.detailKey = null;
  }

  render(selected) {
    this.renderAlerts();
    this.renderOrders(selected);
    this.renderCouriers(selected);
  }

  renderCounters(perf) {
    const { board, fleet } = this.ctx;
    const r = board.rates;
    const c = board.counters;
    const set = (id, text) => (document.getElementById(id).textContent = text);
    set("c-pings", r.pingsPerS == null ? "–" : Math.round(r.pingsPerS).toLocaleString("en"));
    set("c-orders", r.ordersPerMin == null ? "–" : r.ordersPerMin.toFixed(1));
    const p = perf.report();
    set("c-latency", p.ping_to_screen_ms_p99 == null ? "–" : `${Math.round(p.ping_to_screen_ms_p99)} ms`);
    set("c-couriers", c ? `${c.drivers_available} / ${c.drivers_busy} / ${c.drivers_offline}` : "–");
    const draw = p.draw_ms_mean == null ? "" : ` · ${p.draw_ms_mean.toFixed(1)} ms draw`;
    set("c-fps", `${Math.round(p.fps)}${draw} · ${fleet.size.toLocaleString("en")} on map`);
  }

  renderAlerts() {
    const { board } = this.ctx;
    const list = document.getElementById("alerts");
    document.getElementById("alerts-count").textContent = board.alerts.length || "";
    list.replaceChildren(
      ...board.alerts.map((a) =>
        el(
          "li",
          {
            class: a.kind,
            dataset: { orderId: a.order_id },
            onclick: () => this.ctx.select("order", a.order_id),
          },
          `${a.kind === "order_waiting" ? "Waiting" : "Courier offline"} · order ${short(a.order_id)}: ${a.message}`,
        ),
      ),
    );
  }

  renderOrders(selected) {
    const { board } = this.ctx;
    const body = document.querySelector("#orders tbody");
    const total = board.counters?.open_orders ?? board.orders.length;
    document.getElementById("orders-count").textContent = total;
    body.replaceChildren(
      ...board.orders.map((o) => {
        const eta = o.eta_s == null ? "–" : `${Math.round(o.eta_s / 60)} min`;
        const courier = o.driver_id ? short(o.driver_id) : o.dispatch ? (o.dispatch.offered ? "offered" : "searching") : "–";
        return el(
          "tr",
          {
            dataset: { orderId: o.order_id, driverId: o.driver_id ?? "" },
            class: selected?.kind === "order" && selected.id === o.order_id ? "selected" : "",
            onclick: () => this.ctx.select("order", o.order_id),
          },
          el("td", {}, short(o.order_id)),
          el("td", {}, o.status),
          el("td", {}, ago(board.at - o.placed_at_ms)),
          el("td", {}, eta),
          el("td", { class: "courier" }, courier),
        );
      }),
    );
  }

  renderCouriers(selected) {
    const { fleet, board } = this.ctx;
    const rows = [];
    for (let i = 0; i < fleet.size; i++) rows.push(i);
    const status = (i) => ["available", "busy", "offline"][fleet.status[i]];
    rows.sort((a, b) => STATUS_ORDER[status(a)] - STATUS_ORDER[status(b)] || (fleet.ids[a] < fleet.ids[b] ? -1 : 1));
    document.getElementById("couriers-count").textContent = fleet.size;
    const body = document.querySelector("#couriers tbody");
    body.replaceChildren(
      ...rows.slice(0, COURIER_ROWS).map((i) => {
        const id = fleet.ids[i];
        const order = board.byDriver.get(id);
        return el(
          "tr",
          {
            dataset: { driverId: id },
            class: selected?.kind === "courier" && selected.id === id ? "selected" : "",
            onclick: () => this.ctx.select("courier", id),
          },
          el("td", {}, short(id)),
          el("td", { class: `st-${status(i)}` }, status(i)),
          el("td", {}, order ? `${short(order.order_id)} (${order.status})` : "–"),
        );
      }),
    );
  }

  /** The detail box of the selection; rebuilt only when the selection changes. */
  renderDetail(selected, force = false) {
    const box = document.getElementById("detail");
    const key = selected ? `${selected.kind}:${selected.id}` : null;
    if (!selected) {
      box.hidden = true;
      this.detailKey = null;
      return;
    }
    if (key === this.detailKey && !force) {
      this.updateDetail(selected);
      return;
    }
    this.detailKey = key;
    box.hidden = false;
    box.replaceChildren(...(selected.kind === "order" ? this.orderDetail(selected.id) : this.courierDetail(selected.id)));
    this.updateDetail(selected);
  }

  /** Refreshes the facts of the detail box, keeping the form as it is. */
  updateDetail(selected) {
    const facts = document.getElementById("detail-facts");
    if (!facts) return;
    const { board, fleet } = this.ctx;
    let rows;
    if (selected.kind === "order") {
      const o = board.byId.get(selected.id);
      rows = o
        ? [
            ["status", o.status],
            ["age", ago(board.at - o.placed_at_ms)],
            ["in status", ago(board.at - o.status_since_ms)],
            ["courier", o.driver_id ? `${short(o.driver_id)} (${o.driver_status ?? "?"})` : "none"],
            ["ETA", o.eta_s == null ? "–" : `${Math.round(o.eta_s / 60)} min (door ${Math.round((o.delivery_eta_s ?? 0) / 60)} min)`],
            ["search", o.dispatch ? `${o.dispatch.offered ? "offered" : "searching"}, ${o.dispatch.attempts} lapsed` : "–"],
          ]
        : [["status", "closed (no longer on the board)"]];
    } else {
      const order = board.byDriver.get(selected.id);
      rows = [
        ["status", fleet.statusOf(selected.id) ?? "not in view"],
        ["order", order ? `${short(order.order_id)} (${order.status})` : "none"],
      ];
    }
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  orderDetail(orderId) {
    const { api } = this.ctx;
    const result = el("p", { class: "result", id: "detail-result" });
    const target = el("select", { id: "reassign-to" }, el("option", { value: "" }, "back to the matcher"));
    const reason = el("input", { id: "cancel-reason", placeholder: "reason", value: "cancelled by dispatch" });
    const o = this.ctx.board.byId.get(orderId);
    if (o) this.fillCandidates(target, o);
    return [
      el("h3", {}, `Order ${short(orderId)}`),
      el("dl", { id: "detail-facts" }),
      el(
        "div",
        { class: "actions" },
        target,
        el("button", {
          id: "reassign",
          type: "button",
          onclick: () =>
            this.act(result, `/v1/admin/orders/${orderId}/reassign`, { driver_id: target.value || null }, (r) =>
              r.driver_id ? `reassigned to ${short(r.driver_id)}` : "back with the matcher",
            ),
        }, "Reassign"),
      ),
      el(
        "div",
        { class: "actions" },
        reason,
        el("button", {
          id: "cancel-order",
          type: "button",
          onclick: () =>
            this.act(result, `/v1/admin/orders/${orderId}/cancel`, { reason: reason.value }, (r) =>
              `cancelled${r.refund ? `, refund ${r.refund.status}` : ""}`,
            ),
        }, "Cancel and refund"),
      ),
      el(
        "div",
        { class: "actions" },
        el("button", {
          id: "ban-customer",
          type: "button",
          onclick: () => {
            const order = this.ctx.board.byId.get(orderId);
            if (!order) return;
            this.act(result, `/v1/admin/users/${order.customer_id}/ban`, {}, () => `customer ${short(order.customer_id)} banned`);
          },
        }, "Ban customer"),
      ),
      result,
    ];
  }

  courierDetail(driverId) {
    const result = el("p", { class: "result", id: "detail-result" });
    return [
      el("h3", {}, `Courier ${short(driverId)}`),
      el("dl", { id: "detail-facts" }),
      el(
        "div",
        { class: "actions" },
        el("button", {
          id: "set-offline",
          type: "button",
          onclick: () => this.act(result, `/v1/admin/drivers/${driverId}/offline`, {}, (r) => `now ${r.status}`),
        }, "Set offline"),
        el("button", {
          id: "ban-user",
          type: "button",
          onclick: () => this.act(result, `/v1/admin/users/${driverId}/ban`, {}, () => "banned"),
        }, "Ban courier"),
      ),
      result,
    ];
  }

  /** The available couriers nearest the pickup, as reassignment targets. */
  async fillCandidates(select, order) {
    try {
      const { lat, lng } = order.pickup;
      const r = await this.ctx.api.get(`/v1/drivers/nearby?lat=${lat}&lng=${lng}&radius_m=20000&limit=20&status=available`);
      for (const d of r.drivers) {
        select.append(el("option", { value: d.driver_id }, `${short(d.driver_id)} · ${Math.round(d.distance_m)} m`));
      }
    } catch (e) {
      select.append(el("option", { disabled: "" }, `couriers unavailable: ${e.message}`));
    }
  }

  async act(result, path, body, describe) {
    result.className = "result";
    result.textContent = "…";
    try {
      const r = await this.ctx.api.post(path, body);
      result.className = "result ok";
      result.textContent = describe(r);
    } catch (e) {
      result.className = "result error";
      result.textContent = e instanceof ApiError ? `refused: ${e.message}` : String(e);
    }
    await this.ctx.refresh();
  }
}
