// The inspector page's script, served as /assets/inspector.js. A module string (no template
// literals inside) so that `deno compile` embeds it. It only reads the JSON API and the SSE feed;
// every value from an actor goes into the page as text, never as markup.
export const INSPECTOR_JS = String.raw`
const $ = (id) => document.getElementById(id);
const TABLE_ROWS = 300;
// Under a flood of calls the page redraws at most this often: the browser often shares its
// CPUs with Berth, and an operator cannot read faster anyway.
const RENDER_EVERY_MS = 400;
// An actor's view is read from the log on disk: while its actor keeps changing, at most this often.
const ACTOR_EVERY_MS = 1500;
const ui = {
  lastSeq: 0,
  at: null,            // null: live; a number: time travel to that sequence
  live: new Map(),     // id -> view, as the feed says now
  shown: new Map(),    // id -> view, what the page shows (live, or as of ui.at)
  selected: null,
  cards: new Map(),    // kind -> card element holding the chart
  svgs: new Map(),     // kind -> svg text
  renderQueued: false,
  renderedAt: 0,
  travelTimer: 0,
  actorTimer: 0,
  actorAt: 0,
  travelling: 0,
};

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setHealth(text, kind) {
  const pill = $("health");
  pill.textContent = text;
  pill.className = "pill" + (kind ? " " + kind : "");
}

async function waitUntilReady() {
  for (;;) {
    try {
      const response = await fetch("/healthz");
      if (response.ok) return;
      setHealth((await response.json()).status || "starting");
    } catch {
      setHealth("unreachable", "bad");
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function loadMachines() {
  const machines = await getJson("/api/machines");
  const holder = $("machines");
  for (const machine of machines) {
    const card = el("div", null, "card");
    card.dataset.kind = machine.kind;
    card.append(el("h2", machine.kind + "s"));
    const chart = el("div", null, "chart");
    const svg = await (await fetch(machine.svg)).text();
    ui.svgs.set(machine.kind, svg);
    chart.innerHTML = svg; // Berth's own drawing of its own machine definition
    card.append(chart);
    holder.append(card);
    ui.cards.set(machine.kind, card);
    $("f-kind").append(new Option(machine.kind, machine.kind));
  }
}

async function loadActors() {
  const query = ui.at === null ? "" : "?at=" + ui.at;
  const body = await getJson("/api/actors" + query);
  const map = new Map(body.actors.map((view) => [view.id, view]));
  if (ui.at === null) ui.live = map;
  ui.shown = map;
  ui.lastSeq = Math.max(ui.lastSeq, body.lastSeq);
  queueRender();
}

function queueRender() {
  if (ui.renderQueued) return;
  ui.renderQueued = true;
  const wait = Math.max(0, ui.renderedAt + RENDER_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    ui.renderQueued = false;
    ui.renderedAt = performance.now();
    render();
  }), wait);
}

function render() {
  renderCounts();
  renderTable();
  renderTravel();
}

function renderCounts() {
  const counts = new Map();
  for (const view of ui.shown.values()) {
    const key = view.kind + "/" + view.state;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  for (const [kind, card] of ui.cards) {
    for (const group of card.querySelectorAll("g.state")) {
      const count = counts.get(kind + "/" + group.dataset.state) || 0;
      group.classList.toggle("occupied", count > 0);
      const text = group.querySelector(".count");
      if (text) text.textContent = count > 0 ? String(count) : "";
    }
  }
}

function detail(view) {
  const c = view.context || {};
  if (view.kind === "volume") {
    const held = Object.values(c.mounts || {}).reduce((sum, n) => sum + n, 0);
    return held + " mount" + (held === 1 ? "" : "s") + (c.problem ? " — " + c.problem : "");
  }
  if (view.kind === "network") return (c.bridge || "") + " " + (c.pool || "");
  if (view.kind === "endpoint") return (c.address || "") + " on " + (c.bridge || "");
  if (view.kind === "pool") {
    const held = Object.keys(c.addresses || {}).length;
    return held + (held === 1 ? " address" : " addresses") + " held";
  }
  return "";
}

function renderTable() {
  const kind = $("f-kind").value;
  const state = $("f-state").value.trim();
  const name = $("f-name").value.trim();
  const rows = [];
  let total = 0;
  const ids = [...ui.shown.keys()].sort();
  for (const id of ids) {
    const view = ui.shown.get(id);
    if (kind && view.kind !== kind) continue;
    if (state && view.state !== state) continue;
    if (name && !view.name.includes(name)) continue;
    total++;
    if (rows.length >= TABLE_ROWS) continue;
    const row = el("tr");
    row.dataset.id = id;
    if (id === ui.selected) row.className = "selected";
    row.append(el("td", id), el("td", view.state), el("td", detail(view)));
    row.addEventListener("click", () => select(id));
    rows.push(row);
  }
  $("actors").tBodies[0].replaceChildren(...rows);
  $("shown").textContent = total > rows.length
    ? "showing " + rows.length + " of " + total + "; narrow the filters"
    : total + " actor" + (total === 1 ? "" : "s");
}

function renderTravel() {
  const slider = $("slider");
  slider.max = String(ui.lastSeq);
  if (ui.at === null) slider.value = String(ui.lastSeq);
  $("live").classList.toggle("on", ui.at === null);
  $("seq").textContent = "log at #" + ui.lastSeq;
  $("at").textContent = ui.at === null ? "live" : "as of #" + ui.at;
}

function applyBatch(batch) {
  ui.lastSeq = Math.max(ui.lastSeq, batch.lastSeq);
  for (const view of batch.actors) {
    if (view.status === "done") ui.live.delete(view.id);
    else ui.live.set(view.id, view);
  }
  if (ui.at === null) {
    ui.shown = ui.live;
    const touched = batch.actors.some((view) => view.id === ui.selected) ||
      batch.records.some((record) => record.actor === ui.selected);
    if (touched) refreshActor();
  }
  queueRender();
}

function refreshActor() {
  if (ui.actorTimer) return;
  const wait = Math.max(0, ui.actorAt + ACTOR_EVERY_MS - performance.now());
  ui.actorTimer = setTimeout(() => {
    ui.actorTimer = 0;
    ui.actorAt = performance.now();
    if (ui.at === null) showActor(ui.selected);
  }, wait);
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("hello", (message) => {
    const hello = JSON.parse(message.data);
    ui.lastSeq = Math.max(ui.lastSeq, hello.lastSeq);
    setHealth("live", "ok");
    if (ui.at === null) loadActors();
  });
  source.addEventListener("batch", (message) => applyBatch(JSON.parse(message.data)));
  source.addEventListener("error", () => setHealth("reconnecting", "bad"));
}

function chartFor(kind, container) {
  container.innerHTML = ui.svgs.get(kind) || "";
  return container.querySelector("svg");
}

function light(svg, from, to, event) {
  if (!svg) return;
  for (const edge of svg.querySelectorAll("g.edge.taken")) edge.classList.remove("taken");
  for (const edge of svg.querySelectorAll("g.edge")) {
    const d = edge.dataset;
    if (d.event === event && d.source === from && d.target === to) edge.classList.add("taken");
  }
}

function lastTransition(entries) {
  const last = entries[entries.length - 1];
  if (!last) return null;
  const before = entries[entries.length - 2];
  const from = before ? before.state : last.from || null;
  return { from: last.from || from, to: last.state, event: last.type };
}

async function select(id) {
  ui.selected = id;
  queueRender();
  await showActor(id);
}

async function showActor(id) {
  if (!id) return;
  const query = ui.at === null ? "" : "?at=" + ui.at;
  let body;
  try {
    body = await getJson("/api/actors/" + id.split("/").map(encodeURIComponent).join("/") + query);
  } catch (error) {
    // Before its first event (time travel) the actor has no history yet.
    body = { actor: null, entries: [], holders: [], note: String(error.message || error) };
  }
  if (ui.selected !== id) return;
  const entries = body.entries || [];
  const view = body.actor;
  $("actor").hidden = false;
  $("actor-title").textContent = id + (view ? " — " + view.state : " — gone");
  const svg = chartFor(id.slice(0, id.indexOf("/")), $("actor-chart"));
  if (svg && view) {
    const current = svg.querySelector('g.state[data-state="' + CSS.escape(view.state) + '"]');
    if (current) current.classList.add("current");
  }
  const step = lastTransition(entries);
  if (step) light(svg, step.from, step.to, step.event);
  $("actor-context").textContent = view
    ? JSON.stringify(view.context, null, 2)
    : body.note || "(no longer exists)";
  renderWhy(view, body.holders || []);
  renderHistory(entries);
}

function renderWhy(view, holders) {
  const why = $("why");
  why.replaceChildren();
  if (!view || view.kind !== "volume") return;
  const box = el("div", null, "holders");
  if (holders.length === 0) {
    box.append(el("p", view.state === "unmounted"
      ? "No mount holds this volume: docker volume rm can remove it."
      : "No mount holds this volume; it is " + view.state + "."));
  } else {
    box.append(el("p", "docker volume rm is refused: " + holders.length + " mount ID" +
      (holders.length === 1 ? " holds" : "s hold") + " this volume."));
    const list = el("ul");
    for (const holder of holders) {
      list.append(el("li", holder.mountId + " × " + (holder.count || 1) + " since " +
        new Date(holder.since).toLocaleString() + " (event #" + holder.seq + ")"));
    }
    box.append(list);
  }
  why.append(box);
}

function renderHistory(entries) {
  const rows = entries.map((entry) => {
    const row = el("tr");
    if (ui.at !== null && entry.seq === ui.at) row.className = "at";
    row.append(
      el("td", entry.seq),
      el("td", new Date(entry.at).toLocaleString()),
      el("td", entry.type),
      el("td", JSON.stringify(entry.data), "data"),
      el("td", entry.state),
      el("td", entry.outcome),
    );
    return row;
  });
  $("history").tBodies[0].replaceChildren(...rows);
}

async function travel(seq) {
  const target = Math.max(0, Math.min(seq, ui.lastSeq));
  ui.at = target >= ui.lastSeq ? null : target;
  const mine = ++ui.travelling;
  await loadActors();
  if (mine !== ui.travelling) return;
  if (ui.at === null) {
    // Back to now: no step to explain.
    $("step").textContent = "";
    for (const card of ui.cards.values()) light(card.querySelector("svg"), null, null, null);
  } else {
    await describeStep(target);
  }
  if (ui.selected) await showActor(ui.selected);
}

async function describeStep(seq) {
  for (const card of ui.cards.values()) light(card.querySelector("svg"), null, null, null);
  if (seq === 0) {
    $("step").textContent = "before the first event";
    return;
  }
  const log = await getJson("/api/log?from=" + seq + "&to=" + seq);
  const record = log.records[0];
  if (!record) return;
  $("step").textContent = "#" + record.seq + " " + record.actor + " " + record.type;
  const history = await getJson("/api/actors/" + record.actor.split("/").map(encodeURIComponent).join("/") + "?at=" + seq);
  const step = lastTransition(history.entries || []);
  const card = ui.cards.get(record.actor.slice(0, record.actor.indexOf("/")));
  if (step && card) light(card.querySelector("svg"), step.from, step.to, step.event);
}

function wire() {
  for (const id of ["f-kind", "f-state", "f-name"]) $(id).addEventListener("input", queueRender);
  $("slider").addEventListener("input", () => {
    clearTimeout(ui.travelTimer);
    const value = Number($("slider").value);
    $("at").textContent = "as of #" + value;
    ui.travelTimer = setTimeout(() => travel(value), 120);
  });
  $("back").addEventListener("click", () => travel((ui.at === null ? ui.lastSeq : ui.at) - 1));
  $("forward").addEventListener("click", () => travel((ui.at === null ? ui.lastSeq : ui.at) + 1));
  $("live").addEventListener("click", () => travel(ui.lastSeq));
}

async function boot() {
  wire();
  await waitUntilReady();
  setHealth("loading");
  await loadMachines();
  await loadActors();
  connect();
  document.body.dataset.ready = "true";
}

boot().catch((error) => setHealth(String(error.message || error), "bad"));
`;
