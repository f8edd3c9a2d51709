// What the console measures about itself, in the page: drawn frames per
// second, the time to apply a courier frame and to draw the couriers, and
// ping-to-screen (the device time of a fix to the frame that drew it: the
// same clock on one machine; across machines it includes their skew).
// `window.hexdash.perf.report()` gives them to the browser test and the
// benchmark.

const WINDOW_MS = 10_000;
const MAX_SAMPLES = 200_000;

/** Samples of the last `WINDOW_MS`, in arrival order. */
class Window {
  constructor() {
    this.t = [];
    this.v = [];
  }

  push(t, v) {
    this.t.push(t);
    this.v.push(v);
    if (this.t.length > MAX_SAMPLES) this.drop(this.t.length - MAX_SAMPLES);
  }

  trim(now) {
    let n = 0;
    while (n < this.t.length && this.t[n] < now - WINDOW_MS) n++;
    if (n) this.drop(n);
  }

  drop(n) {
    this.t.splice(0, n);
    this.v.splice(0, n);
  }

  quantile(q) {
    if (!this.v.length) return null;
    const sorted = Float64Array.from(this.v).sort();
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  mean() {
    return this.v.length ? this.v.reduce((a, b) => a + b, 0) / this.v.length : null;
  }

  get length() {
    return this.v.length;
  }
}

export class Perf {
  constructor() {
    /** Animation frames: at the display's rate while the page keeps up. */
    this.frames = new Window();
    this.applyMs = new Window();
    this.drawMs = new Window();
    this.latencyMs = new Window();
    /** Device time of a fix to the frame's arrival (before drawing). */
    this.arrivalMs = new Window();
    this.updates = 0;
    this.pending = [];
  }

  /**
   * A `drivers` frame took `ms` to apply; its fix times wait for the next
   * draw. A subscription's snapshot holds fixes of any age (the last each
   * courier sent), so it counts for the apply time only.
   */
  applied(ms, drivers, snapshot = false) {
    const now = performance.now();
    this.applyMs.push(now, ms);
    this.updates += drivers.length;
    if (snapshot) return;
    const wall = Date.now();
    for (const d of drivers) {
      this.pending.push(d.ts);
      this.arrivalMs.push(now, Math.max(0, wall - d.ts));
    }
  }

  /** An animation frame ran (drawing or not): frames per second. */
  tick() {
    const now = performance.now();
    this.frames.push(now, 1);
    this.frames.trim(now);
  }

  /** A fleet draw took `ms`; everything applied before it is now on screen. */
  drew(ms) {
    const now = performance.now();
    const wall = Date.now();
    this.drawMs.push(now, ms);
    for (const ts of this.pending) this.latencyMs.push(now, Math.max(0, wall - ts));
    this.pending.length = 0;
    for (const w of [this.frames, this.applyMs, this.drawMs, this.latencyMs, this.arrivalMs]) w.trim(now);
  }

  report() {
    const now = performance.now();
    const first = this.frames.t[0] ?? now;
    const seconds = Math.max(0.001, Math.min(WINDOW_MS, now - first) / 1000);
    return {
      window_s: seconds,
      fps: this.frames.length / seconds,
      draws: this.drawMs.length,
      apply_ms_mean: this.applyMs.mean(),
      apply_ms_p99: this.applyMs.quantile(0.99),
      draw_ms_mean: this.drawMs.mean(),
      draw_ms_p99: this.drawMs.quantile(0.99),
      ping_to_frame_ms_p50: this.arrivalMs.quantile(0.5),
      ping_to_frame_ms_p99: this.arrivalMs.quantile(0.99),
      ping_to_screen_ms_p50: this.latencyMs.quantile(0.5),
      ping_to_screen_ms_p99: this.latencyMs.quantile(0.99),
      samples: this.latencyMs.length,
      updates_total: this.updates,
    };
  }
}
