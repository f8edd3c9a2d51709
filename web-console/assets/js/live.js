// The tracking socket (`/v1/ws`): one `area` subscription for the visible
// part of the map (grown by half a screen each way, so a pan rarely needs
// a new one), with server-side conflation: each `drivers` frame holds the
// couriers that changed since the last one, latest state only. Reconnects
// with backoff; a new subscription starts from the server's snapshot.

const RESUBSCRIBE_MS = 400;
const MAX_BACKOFF_MS = 10_000;

export class Live {
  /**
   * `handlers`: `drivers(list, snapshot)`, `unassigned(msg)`, `status(text)`,
   * `reset()` (before a new subscription's snapshot).
   */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.socket = null;
    this.bbox = null;
    this.wanted = null;
    this.timer = 0;
    this.backoff = 500;
    this.closed = false;
    this.frames = 0;
    /** The next `drivers` frame is a subscription's snapshot (fixes of any age). */
    this.snapshotNext = false;
  }

  start() {
    this.closed = false;
    this.connect();
  }

  stop() {
    this.closed = true;
    this.socket?.close();
  }

  connect() {
    const socket = new WebSocket(this.api.socketUrl());
    this.socket = socket;
    socket.onopen = () => {
      this.backoff = 500;
      this.handlers.status("live");
      this.bbox = null;
      if (this.wanted) this.subscribe(this.wanted);
    };
    socket.onmessage = (e) => this.receive(JSON.parse(e.data));
    socket.onclose = () => {
      this.handlers.status("reconnecting");
      if (this.closed) return;
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    };
  }

  receive(msg) {
    switch (msg.type) {
      case "drivers":
        this.frames++;
        this.handlers.drivers(msg.drivers, this.snapshotNext);
        this.snapshotNext = false;
        break;
      case "unassigned":
        this.handlers.unassigned(msg);
        break;
      case "error":
        this.handlers.status(`socket: ${msg.code}: ${msg.message}`);
        break;
      default:
        break;
    }
  }

  /**
   * Follows `view`: subscribes again (debounced) once the visible area
   * leaves the box subscribed to.
   */
  follow(view) {
    const visible = view.bbox(0);
    const b = this.bbox;
    const inside = b && visible[0] >= b[0] && visible[1] >= b[1] && visible[2] <= b[2] && visible[3] <= b[3];
    if (inside) return;
    this.wanted = view.bbox(0.5);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.subscribe(this.wanted), this.bbox ? RESUBSCRIBE_MS : 0);
  }

  subscribe(bbox) {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.bbox = bbox;
    this.snapshotNext = true;
    this.handlers.reset();
    this.socket.send(JSON.stringify({ op: "subscribe", channel: "area", bbox }));
  }
}
