// The inspector page's styles; a module string so that `deno compile` embeds it.
export const PAGE_CSS = `
:root { --fg: #1d2330; --muted: #6b7280; --line: #d5d9e0; --accent: #0b6bcb; --lit: #f59e0b;
  --ok: #15803d; --bad: #b91c1c; --bg: #f7f8fa; font-family: system-ui, sans-serif; color: var(--fg); }
body { margin: 0; background: var(--bg); }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #fff;
  border-bottom: 1px solid var(--line); }
h1 { font-size: 1.1rem; margin: 0; }
h2 { font-size: 1rem; margin: .2rem 0 .6rem; }
h3 { font-size: .9rem; margin: 1rem 0 .4rem; }
.muted { color: var(--muted); font-size: .85rem; }
.pill { border-radius: 1rem; padding: .1rem .6rem; font-size: .8rem; background: #e5e7eb; }
.pill.ok { background: #dcfce7; color: var(--ok); }
.pill.bad { background: #fee2e2; color: var(--bad); }
#travel { display: flex; gap: .5rem; align-items: center; padding: .5rem 1rem; background: #fff;
  border-bottom: 1px solid var(--line); }
#slider { flex: 1; }
button { border: 1px solid var(--line); background: #fff; border-radius: .3rem; padding: .2rem .6rem;
  cursor: pointer; }
button.on { background: var(--accent); color: #fff; border-color: var(--accent); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; padding: 1rem; }
#machines { grid-column: 1 / -1; display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); }
/* The volume machine has the most states: it gets the whole width to stay readable. */
#machines .card[data-kind=volume] { grid-column: 1 / -1; }
.card { background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .6rem; }
.card h2 { text-transform: capitalize; }
.card svg, #actor-chart svg { width: 100%; height: auto; max-height: 640px; }
svg.machine .state rect { fill: #fff; stroke: #94a3b8; }
svg.machine .state.occupied rect { fill: #e0efff; stroke: var(--accent); }
svg.machine .state.current rect { fill: #fff3d6; stroke: var(--lit); stroke-width: 3; }
svg.machine .state .count { fill: var(--accent); font-weight: 600; }
svg.machine .edge.taken path { stroke: var(--lit); stroke-width: 3; }
svg.machine .edge.taken .edge-label { fill: #92400e; font-weight: 600; }
#table-panel, #actor { background: #fff; border: 1px solid var(--line); border-radius: .4rem;
  padding: .6rem; min-width: 0; }
.filters { display: flex; gap: .4rem; margin-bottom: .5rem; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
#actors tbody tr { cursor: pointer; }
#actors tbody tr:hover, #actors tbody tr.selected { background: #eef5ff; }
td.data { font-family: ui-monospace, monospace; font-size: .78rem; word-break: break-all; }
tr.at td { background: #fff3d6; }
pre { background: var(--bg); padding: .5rem; overflow: auto; font-size: .78rem; max-height: 16rem; }
#why { margin-top: .5rem; }
#why .holders { border-left: 3px solid var(--lit); padding-left: .6rem; }
`;
