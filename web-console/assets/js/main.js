// The console's entry: log in, load the map, then keep four loops going:
// the socket's courier frames (applied as they come), the board poll,
// the hexagon poll, and the animation frame that redraws what changed.
// `window.hexdash` exposes the state to the browser test and benchmark.

import { Api } from "./api.js";
import { Board } from "./board.js";
import { Fleet } from "./fleet.js";
import { HexLayer, resolutionFor } from "./hexes.js";
import { Live } from "./live.js";
import { Panels } from "./panels.js";
import { Perf } from "./perf.js";
import { RoadLayer } from "./roads.js";
import { Scene } from "./scene.js";
import { View, worldX, worldY } from "./view.js";

const BOARD_EVERY_MS = 2000;
const HEXES_EVERY_MS = 3000;
const TRACK_EVERY_MS = 3000;
const RESTAURANTS_EVERY_MS = 60_000;
const COUNTERS_EVERY_MS = 1000;
/** A press that moves less than this is a click, not a drag. */
const CLICK_SLOP_PX = 4;

const $ = (id) => document.getElementById(id);

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message ?? "";
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const api = await Api.login($("login-email").value, $("login-password").value);
    start(api);
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});

const stored = Api.stored();
if (stored) start(stored);
else showLogin();

async function start(api) {
  $("login").hidden = true;
  $("app").hidden = false;
  const view = new View();
  const layers = { roads: new RoadLayer(), fleet: new Fleet(), hexes: new HexLayer() };
  const scene = new Scene($("base"), $("fleet"), layers);
  const board = new Board(api);
  const perf = new Perf();
  const state = { board, selected: null, note: "" };
  const note = (text) => ($("map-note").textContent = text);

  const refresh = async () => {
    try {
      await board.refresh();
    } catch (e) {
      if (e.status === 401) {
        api.logout();
        live.stop();
        showLogin("Session ended: log in again.");
        return;
      }
      note(`board: ${e.message}`);
      return;
    }
    scene.baseDirty = scene.fleetDirty = true;
    panels.render(state.selected);
    panels.renderDetail(state.selected);
  };

  const select = (kind, id) => {
    state.selected = kind ? { kind, id } : null;
    scene.track = null;
    scene.baseDirty = scene.fleetDirty = true;
    panels.render(state.selected);
    panels.renderDetail(state.selected);
    if (kind === "courier") loadTrack();
  };

  const panels = new Panels({ api, board, fleet: layers.fleet, select, refresh });

  const live = new Live(api, {
    drivers(list, snapshot) {
      const t0 = performance.now();
      layers.fleet.apply(list);
      perf.applied(performance.now() - t0, list, snapshot);
      scene.fleetDirty = true;
    },
    unassigned() {
      refresh();
    },
    reset() {
      layers.fleet.clear();
      scene.fleetDirty = true;
    },
    status(text) {
      state.socket = text;
    },
  });

  const loadTrack = async () => {
    const sel = state.selected;
    if (sel?.kind !== "courier") return;
    try {
      const track = await api.get(`/v1/drivers/${sel.id}/track`);
      if (state.selected === sel) {
        scene.track = track.geometry ? track.geometry.coordinates : null;
        scene.fleetDirty = true;
      }
    } catch {
      scene.track = null;
    }
  };

  let hexResolution = 0;
  const loadHexes = async () => {
    if (!(scene.show.hexes || scene.hexMode)) return;
    hexResolution = resolutionFor(view.zoom);
    try {
      layers.hexes.load(await api.get(`/v1/admin/console/hexes?resolution=${hexResolution}`));
      scene.baseDirty = true;
    } catch (e) {
      note(`hexagons: ${e.message}`);
    }
  };

  window.addEventListener("resize", () => scene.resize(view));
  scene.resize(view);

  try {
    const roads = await api.get("/v1/admin/console/roads");
    layers.roads.load(roads);
    if (roads.bbox) view.fit(roads.bbox);
    else note("No road graph on the server (set matcher.roads): couriers and orders only.");
  } catch (e) {
    note(`roads: ${e.message}`);
  }
  board.loadRestaurants().then(() => (scene.baseDirty = true), (e) => note(`restaurants: ${e.message}`));
  live.start();
  live.follow(view);
  await refresh();

  setInterval(refresh, BOARD_EVERY_MS);
  setInterval(loadHexes, HEXES_EVERY_MS);
  setInterval(loadTrack, TRACK_EVERY_MS);
  setInterval(() => board.loadRestaurants().then(() => (scene.baseDirty = true), () => {}), RESTAURANTS_EVERY_MS);
  setInterval(() => {
    const wasHexMode = scene.hexMode;
    if (scene.updateMode(view) && !wasHexMode) loadHexes();
    panels.renderCounters(perf);
    panels.renderCouriers(state.selected);
  }, COUNTERS_EVERY_MS);

  for (const [id, layer] of [["layer-roads", "roads"], ["layer-hexes", "hexes"], ["layer-orders", "orders"]]) {
    $(id).addEventListener("change", (e) => {
      scene.show[layer] = e.target.checked;
      scene.baseDirty = scene.fleetDirty = true;
      if (layer === "hexes") loadHexes();
    });
  }
  $("logout").addEventListener("click", () => {
    api.logout();
    location.reload();
  });

  // Pan, zoom, click.
  const map = $("map");
  let drag = null;
  map.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, y: e.clientY, moved: 0 };
    map.classList.add("dragging");
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    drag.moved += Math.abs(dx) + Math.abs(dy);
    drag.x = e.clientX;
    drag.y = e.clientY;
    view.pan(dx, dy);
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const click = drag.moved < CLICK_SLOP_PX;
    drag = null;
    map.classList.remove("dragging");
    if (click) pick(e);
  });
  map.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const r = map.getBoundingClientRect();
      view.zoomAt(-Math.sign(e.deltaY) * 0.5, e.clientX - r.left, e.clientY - r.top);
    },
    { passive: false },
  );

  const pick = (e) => {
    const r = map.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    if (x < 0 || y < 0 || x > r.width || y > r.height) return;
    const courier = scene.hexMode ? null : layers.fleet.nearest(view, x, y, 8);
    if (courier) return select("courier", courier);
    for (const o of board.orders) {
      for (const p of [o.dropoff, o.pickup]) {
        const dx = view.sx(worldX(p.lng)) - x;
        const dy = view.sy(worldY(p.lat)) - y;
        if (dx * dx + dy * dy < 64) return select("order", o.order_id);
      }
    }
    select(null);
  };

  // The animation loop: redraw only what changed.
  let seenVersion = -1;
  const frame = () => {
    perf.tick();
    if (view.version !== seenVersion) {
      seenVersion = view.version;
      scene.baseDirty = scene.fleetDirty = true;
      live.follow(view);
      if (scene.updateMode(view) || scene.show.hexes) {
        if (resolutionFor(view.zoom) !== hexResolution) loadHexes();
      }
    }
    if (scene.baseDirty) scene.drawBase(view, state, () => (scene.baseDirty = true));
    if (scene.fleetDirty) {
      const t0 = performance.now();
      scene.drawFleet(view, state);
      perf.drew(performance.now() - t0);
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  window.hexdash = { api, view, layers, scene, board, perf, state, live, select, refresh, ready: true };
}
