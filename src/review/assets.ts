/** The page's stylesheet, served from this process as /assets/review.css (no CDN, nothing downloaded); its script is client.ts. */

export const CSS = `
:root { --fg: #1b1f24; --muted: #5b6570; --line: #d5dae0; --flag: #c62828; --pass: #2e7d32; --unc: #ef6c00; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 "DejaVu Sans", system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.2em; align-items: baseline; padding: .6em 1em; background: #222a33; color: #fff; }
header a { color: #cfe3ff; text-decoration: none; } header a.on { color: #fff; font-weight: bold; }
header .station { margin-left: auto; color: #aab4bf; font-size: 13px; }
main { padding: 1em; max-width: 1280px; }
h1 { font-size: 20px; margin: .2em 0 .6em; }
table { border-collapse: collapse; background: #fff; margin-bottom: 1.2em; }
th, td { border: 1px solid var(--line); padding: .3em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.queue { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .8em; }
.queue a { display: block; background: #fff; border: 1px solid var(--line); padding: .4em; color: inherit; text-decoration: none; font-size: 13px; }
.queue img { width: 100%; aspect-ratio: 1 / 2; object-fit: contain; background: #000; display: block; }
.verdict-flag { color: var(--flag); font-weight: bold; } .verdict-pass { color: var(--pass); font-weight: bold; } .reason-uncertain { color: var(--unc); }
.capture { display: flex; gap: 1.2em; flex-wrap: wrap; align-items: flex-start; }
.stage { position: relative; width: min(420px, 90vw); aspect-ratio: 1 / 2; background: #000; }
.stage img, .stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.stage canvas.display { display: none; }
.stage.windowed canvas.display { display: block; } .stage.windowed img.model { display: none; }
.stage img.heat { image-rendering: auto; mix-blend-mode: normal; }
.stage.no-heat img.heat { display: none; }
.placeholder { display: flex; align-items: center; justify-content: center; text-align: center; height: 100%; color: #fff; padding: 1em; }
.facts { background: #fff; border: 1px solid var(--line); padding: .8em 1em; flex: 1 1 320px; max-width: 620px; }
.facts dt { color: var(--muted); font-size: 13px; } .facts dd { margin: 0 0 .4em; }
.scale { display: block; margin: .3em 0 1em; max-width: 520px; }
.scale .track { fill: #eef1f4; stroke: var(--line); } .scale .band { fill: rgba(239,108,0,.35); } .scale .thr { fill: #000; } .scale .p { fill: var(--flag); }
.scale text { font-size: 9px; fill: var(--muted); }
form.label button { font-size: 16px; padding: .5em 1.1em; margin-right: .5em; border-radius: 4px; border: 1px solid #888; cursor: pointer; }
form.label button.normal { background: #e8f5e9; } form.label button.abnormal { background: #ffebee; }
form.label input[type=text] { width: 100%; padding: .4em; margin: .4em 0; }
.keys { color: var(--muted); font-size: 13px; }
.view-controls { width: min(420px, 90vw); font-size: 14px; }
.view-controls > label { display: block; margin: .25em 0; }
.view-controls .sliders { display: grid; grid-template-columns: auto 1fr; gap: .1em .6em; align-items: center; }
.view-controls .sliders input { width: 100%; }
.view-controls button { margin: .3em 0; }
nav.pager a { margin-right: 1em; }
figure { background: #fff; border: 1px solid var(--line); margin: 0 0 1.2em; padding: .5em; max-width: 700px; }
figcaption { font-weight: bold; margin-bottom: .3em; }
svg text { font-size: 11px; fill: var(--muted); } svg .grid { stroke: var(--line); }
svg .flag { fill: var(--flag); } svg .rest { fill: #90a4ae; } svg .none { fill: #b0bec5; } svg .normal { fill: var(--pass); } svg .abnormal { fill: var(--flag); }
.notice { background: #fff8e1; border: 1px solid #ffe082; padding: .5em .8em; margin-bottom: 1em; }
pre { background: #fff; border: 1px solid var(--line); padding: .6em; overflow: auto; }
`;
