/** The page's style, inlined into the HTML (no external sheet, no web font). Colours meet WCAG AA contrast. */
export const PAGE_CSS = `
:root{--fg:#1a1d21;--muted:#4a5360;--bg:#fff;--panel:#f5f7fa;--line:#c9d1db;--req:#0b57a4;--rep:#7a2fb3;
--ok:#1b6e34;--bad:#b3261e;--warn:#8a5300;--focus:#f2a900;--hl:#fff3bf;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
*{box-sizing:border-box}body{margin:0;color:var(--fg);background:var(--bg)}
a{color:var(--req)}button,input,select{font:inherit}
:focus-visible{outline:3px solid var(--focus);outline-offset:1px}
.loading{padding:2rem}
header.top{display:flex;align-items:center;gap:1rem;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:var(--panel);flex-wrap:wrap}
header.top h1{font-size:1.1rem;margin:0}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-weight:600;font-size:.85rem;border:1px solid currentColor}
.badge.ok{color:var(--ok)}.badge.bad{color:var(--bad)}.badge.warn{color:var(--warn)}
.tabs{display:flex;gap:.25rem;margin-left:auto}
.tabs button{border:1px solid var(--line);background:#fff;padding:.25rem .75rem;border-radius:.3rem;cursor:pointer}
.tabs button[aria-selected=true]{background:var(--req);color:#fff;border-color:var(--req)}
.diag{display:grid;grid-template-columns:minmax(250px,300px) minmax(0,1fr) minmax(300px,440px);gap:0;height:calc(100vh - 49px)}
.diag>section{overflow:auto;padding:.75rem;border-right:1px solid var(--line)}
.diag>section:last-child{border-right:0}
h2{font-size:1rem;margin:.25rem 0 .5rem}h3{font-size:.95rem;margin:.75rem 0 .35rem}
ul.plain{list-style:none;margin:0;padding:0}
.probe{display:block;width:100%;text-align:left;border:1px solid var(--line);border-left:6px solid var(--bad);background:#fff;border-radius:.3rem;padding:.35rem .5rem;margin:0 0 .35rem;cursor:pointer}
.probe.ok{border-left-color:var(--ok)}.probe[aria-pressed=true]{background:#e7f0fb;border-color:var(--req)}
.probe .v{font-weight:600}.probe .v.ok{color:var(--ok)}.probe .v.bad{color:var(--bad)}
.probe small{display:block;color:var(--muted)}
.verdict-change{font-size:.85rem}
.card{border:1px solid var(--line);border-radius:.35rem;padding:.5rem .6rem;margin:0 0 .6rem;background:#fff}
.card.error{border-left:5px solid var(--bad)}.card.warning{border-left:5px solid var(--warn)}.card.info{border-left:5px solid var(--muted)}
.card p{margin:.3rem 0}.coverage ul{margin:.3rem 0;padding-left:1.1rem}.coverage li{margin:.15rem 0}
.muted{color:var(--muted)}
pre{background:var(--panel);border:1px solid var(--line);padding:.4rem .5rem;overflow:auto;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:.3rem 0;white-space:pre}
section.pre{overflow:auto;margin:.3rem 0;border:1px solid var(--line);background:var(--panel)}
section.pre>pre{overflow:visible;border:0;margin:0;display:inline-block;min-width:100%}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.switch{display:flex;align-items:center;gap:.4rem;margin:.35rem 0;font-weight:600}
.switch input{width:1.1rem;height:1.1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--panel)}
.topo-wrap{position:relative;border:1px solid var(--line);border-radius:.35rem;overflow:auto;background:#fbfcfd;height:min(62vh,640px)}
.topo-tools{display:flex;gap:.35rem;align-items:center;margin:0 0 .35rem;flex-wrap:wrap}
.topo-tools button{border:1px solid var(--line);background:#fff;border-radius:.3rem;padding:.1rem .5rem;cursor:pointer}
.legend{display:flex;gap:.75rem;font-size:.85rem;color:var(--muted);margin-left:auto}
.legend i{display:inline-block;width:1.4rem;height:.3rem;vertical-align:middle;margin-right:.25rem}
svg text{font-family:system-ui,sans-serif;fill:var(--fg)}
.n-host>rect{fill:#eef2f7;stroke:#8b98a9}.n-host>text{font-weight:700}
.n rect{fill:#fff;stroke:#6b7787;stroke-width:1}
.n.k-bridge rect{fill:#e9f3ff}.n.k-tap rect,.n.k-uplink rect{fill:#f4f4f4}
.n.k-segment rect{fill:#dde3ea;stroke:#5a6676}
.n.k-guest.r-director rect{stroke:var(--req);stroke-width:2}.n.k-guest.r-real-server rect{stroke:#1b6e34;stroke-width:2}
.n.k-host-summary rect{fill:#fff}.n.k-host-summary.failing rect{stroke:var(--bad);stroke-width:2}
.n.on rect{fill:#fff8d6}
.n .d{fill:var(--muted);font-size:10px}.n-host .d{fill:var(--muted);font-size:11px;font-weight:400}
.edge{fill:none;stroke:#9aa5b3;stroke-width:1.2}
.route{fill:none;stroke-width:3.5;stroke-linecap:round;stroke-linejoin:round;opacity:.85}
.route.request{stroke:var(--req)}.route.reply{stroke:var(--rep);stroke-dasharray:7 4}
.hopdot{cursor:pointer}.hopdot circle{stroke:#fff;stroke-width:1.5}
.hopdot.request circle{fill:var(--req)}.hopdot.reply circle{fill:var(--rep)}
.hopdot.sel circle{stroke:var(--focus);stroke-width:4}
.hopdot text{fill:#fff;font-size:9px;font-weight:700}
.drop line{stroke:var(--bad);stroke-width:4}.drop circle{fill:#fff;stroke:var(--bad);stroke-width:3}
.capmark rect{fill:none;stroke:#8a5300;stroke-width:2.5;stroke-dasharray:4 3}.capmark.last rect{stroke:var(--bad);stroke-width:3.5;stroke-dasharray:none}
ol.steps{margin:.5rem 0;padding-left:1.6rem}ol.steps li{margin:.1rem 0}
ol.steps button{border:1px solid transparent;background:none;text-align:left;cursor:pointer;padding:.1rem .3rem;border-radius:.25rem;width:100%}
ol.steps button[aria-current=true]{border-color:var(--req);background:#e7f0fb}
.leg{display:inline-block;font-size:.75rem;font-weight:700;padding:0 .3rem;border-radius:.2rem;color:#fff;margin-right:.3rem}
.leg.request{background:var(--req)}.leg.reply{background:var(--rep)}.leg.drop{background:var(--bad)}
.chain{font-family:ui-monospace,monospace;font-size:12px}.chain b{color:var(--bad)}
ol.origin{padding-left:1.2rem;margin:.3rem 0}ol.origin li{margin:.15rem 0}
ol.origin button{border:1px solid var(--line);background:#fff;border-radius:.25rem;cursor:pointer;font-size:.8rem;padding:0 .3rem;margin-left:.3rem}
.file{position:relative;font:12px/1.45 ui-monospace,monospace;border:1px solid var(--line);max-height:300px;overflow:auto;background:var(--panel)}
.file div{white-space:pre;padding:0 .4rem}.file div.hl{background:var(--hl);outline:2px solid var(--warn)}
.file span.ln{display:inline-block;width:3.2em;color:var(--muted);user-select:none}
.fleet{padding:1rem;max-width:1400px}
.kpis{display:flex;gap:1rem;flex-wrap:wrap;margin:.5rem 0 1rem}.kpi{border:1px solid var(--line);border-radius:.35rem;padding:.4rem .8rem;background:var(--panel)}
.kpi b{display:block;font-size:1.3rem}
.hostgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(74px,1fr));gap:3px;margin:.5rem 0 1rem}
.hostgrid li{display:block;font-size:.72rem;padding:.15rem .25rem;border-radius:.2rem;background:#e3f1e7;color:#123d1f;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.hostgrid li.f{background:#fbe3e1;color:#6d140f}
.vlist{height:420px;overflow:auto;border:1px solid var(--line);position:relative}
.vlist .row{position:absolute;left:0;right:0;height:28px;display:grid;grid-template-columns:2fr 1fr 1fr 2fr 1.2fr 2fr;gap:.4rem;align-items:center;padding:0 .5rem;border-bottom:1px solid #eef1f4;font-size:.85rem;white-space:nowrap;overflow:hidden}
.vlist .row.head{position:sticky;top:0;background:var(--panel);font-weight:700;z-index:1}
.bad{color:var(--bad)}.ok{color:var(--ok)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.tag{display:inline-block;font-size:.75rem;font-weight:600;border:1px solid currentColor;border-radius:.2rem;padding:0 .3rem;margin-left:.3rem}
.probe .ev{font-weight:600}.probe .ev.warn{color:var(--warn)}
.evidence h4{font-size:.9rem;margin:.5rem 0 .2rem}.evidence ul.facts{margin:.2rem 0;padding-left:1.1rem}.evidence ul.facts li{margin:.15rem 0}
.evidence.ok{border-left:5px solid var(--ok)}.evidence.bad{border-left:5px solid var(--bad)}.evidence.warn{border-left:5px solid var(--warn)}
.counters li.counter,.marks li{border-top:1px solid var(--line);padding:.25rem 0}.counters p,.marks p{margin:.15rem 0}
.kmark-item.disagree{background:#fdf0ef}.warning-text{color:var(--warn);font-weight:600}
.linkish{border:1px solid var(--line);background:#fff;border-radius:.25rem;cursor:pointer;font-size:.8rem;padding:0 .3rem}
.kmark rect{stroke:#fff;stroke-width:1.5}.kmark.agree rect{fill:var(--ok)}.kmark.disagree rect{fill:var(--bad)}
.kmark text{fill:#fff;font-size:10px;font-weight:700}
.uc{position:relative;display:inline-block}.warn-text{color:var(--warn)}.directors li{margin:.15rem 0}
.uc button{border:1px solid var(--warn);color:var(--warn);background:#fff;border-radius:.2rem;font-size:.8rem;font-weight:600;cursor:help;padding:0 .3rem}
.uc .tip{display:none;position:absolute;z-index:5;left:0;top:1.6rem;width:22rem;max-width:70vw;background:#fff;color:var(--fg);border:1px solid var(--warn);border-radius:.3rem;padding:.35rem .5rem;box-shadow:0 2px 8px rgba(0,0,0,.15);font-weight:400}
.uc:hover .tip,.uc:focus-within .tip,.uc .tip.open{display:block}
@media (max-width:1100px){.diag{grid-template-columns:260px minmax(0,1fr);height:auto}.diag>section:last-child{grid-column:1/-1}}
`;
