// The inspector page's HTML shell. Everything it loads is served by Berth itself (no CDN), and it
// is a module string so that `deno compile` embeds it.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth inspector</title>
<link rel="stylesheet" href="/assets/inspector.css">
<script type="module" src="/assets/inspector.js"></script>
</head>
<body>
<header>
  <h1>Berth inspector</h1>
  <span id="health" class="pill">connecting</span>
  <span id="seq" class="muted"></span>
</header>
<section id="travel" aria-label="Time travel">
  <button id="back" title="One event back">&#9664;</button>
  <input id="slider" type="range" min="0" max="0" value="0" aria-label="Sequence">
  <button id="forward" title="One event forward">&#9654;</button>
  <button id="live" class="on" title="Follow the log as it grows">live</button>
  <span id="at" class="muted"></span>
  <span id="step" class="muted"></span>
</section>
<main>
  <section id="machines" aria-label="Machines"></section>
  <section id="table-panel" aria-label="Actors">
    <h2>Actors</h2>
    <div class="filters">
      <select id="f-kind" aria-label="Kind"><option value="">every kind</option></select>
      <input id="f-state" placeholder="state" aria-label="State">
      <input id="f-name" placeholder="name contains" aria-label="Name">
      <span id="shown" class="muted"></span>
    </div>
    <table id="actors"><thead><tr><th>actor</th><th>state</th><th>detail</th></tr></thead>
      <tbody></tbody></table>
  </section>
  <section id="actor" aria-label="Actor" hidden>
    <h2 id="actor-title"></h2>
    <div id="actor-chart"></div>
    <div id="why"></div>
    <h3>Context</h3>
    <pre id="actor-context"></pre>
    <h3>History</h3>
    <table id="history"><thead><tr><th>seq</th><th>time</th><th>event</th><th>data</th>
      <th>state after</th><th>outcome</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;
