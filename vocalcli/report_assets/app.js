/* vocal report: draws the page from data/site.js and loads data/songs-NNN.js chunks on demand.
 * Plain JavaScript, no libraries, no network: the page works from file://. Data only ever reaches the
 * DOM through textContent / attributes, never innerHTML (song titles are user data). */
"use strict";

(function () {
  const VOCAL = (window.VOCAL = window.VOCAL || {});
  const SVGNS = "http://www.w3.org/2000/svg";
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  const GENDER_WORDS = { "f": "female", "m": "male", "f?": "female (predicted)", "m?": "male (predicted)", "": "unknown" };
  const GENDER_COLORS = { "female": "#d6336c", "male": "#1c7ed6", "female (predicted)": "#f783ac",
                          "male (predicted)": "#74c0fc", "unknown": "#adb5bd" };
  const PAD = 18, PAD_TOP = 32;  // the caption has the top strip of the map to itself
  let W = 1000, H = 700;     // the map's size in pixels (its viewBox follows the box it is drawn in)

  let S = null;              // the site data
  let N = 0;                 // songs
  const chunks = {};         // chunk number -> {song_id: detail}
  const waiting = {};        // chunk number -> [callbacks]
  const indexOf = {};        // song_id -> row
  let selected = -1;
  let colorBy = "singer";
  let hidden = new Set();    // legend categories switched off
  let points = [];           // circle per song (null when not on the map)

  // ------------------------------------------------------------------------------------------- utils
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d === undefined ? 2 : d); }
  function mmss(s) { s = Math.round(s); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
  function plural(n, word, many) { return n + " " + (n === 1 ? word : (many || word + "s")); }
  function singerOf(i) { return S.singers[S.songs.singer[i]]; }
  function songLabel(i) { return S.songs.title[i] + " — " + singerOf(i).name; }
  function play(audio) {
    const p = audio.play();
    if (p && p.catch) p.catch(() => {}); // a browser may refuse to play before a click: not an error
  }

  // only one clip plays at a time
  document.addEventListener("play", (ev) => {
    for (const a of document.querySelectorAll("audio")) if (a !== ev.target) a.pause();
  }, true);

  // ---------------------------------------------------------------------------------- data loading
  VOCAL.missing = function (what) {
    document.getElementById("summary").textContent =
      "Could not load " + what + ": this folder is incomplete. Run 'vocal report' again.";
  };
  VOCAL.site = function (data) {
    S = data;
    N = S.songs.id.length;
    S.songs.id.forEach((id, i) => { indexOf[id] = i; });
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  };
  VOCAL.chunk = function (n, data) {
    chunks[n] = data;
    for (const cb of waiting[n] || []) cb(null);
    delete waiting[n];
  };
  function loadChunk(n, cb) {
    if (chunks[n]) { cb(null); return; }
    if (waiting[n]) { waiting[n].push(cb); return; }
    waiting[n] = [cb];
    const name = "data/songs-" + String(n).padStart(3, "0") + ".js";
    const s = el("script", { src: name });
    s.addEventListener("error", () => {
      for (const f of waiting[n] || []) f(name);
      delete waiting[n];
    });
    document.head.append(s);
  }

  // ------------------------------------------------------------------------------------------ start
  function start() {
    document.getElementById("project").textContent = "· " + S.project;
    document.title = "vocal report · " + S.project;
    renderSummary();
    renderLibrary();
    renderQuality();
    const dl = document.getElementById("song-list");
    for (let i = 0; i < N; i++) dl.append(el("option", { value: songLabel(i) }));
    document.getElementById("find").addEventListener("change", onFind);
    const cb = document.getElementById("color-by");
    cb.addEventListener("change", () => { colorBy = cb.value; hidden = new Set(); paint(); });
    renderMap();
    window.addEventListener("hashchange", fromHash);
    if (!fromHash() && S.featured && indexOf[S.featured] !== undefined) select(indexOf[S.featured], false, false);
  }

  function fromHash() {
    const m = /song=([^&]+)/.exec(location.hash);
    if (!m) return false;
    const i = indexOf[decodeURIComponent(m[1])];
    if (i === undefined) return false;
    if (i !== selected) select(i, false, false);
    return true;
  }

  function onFind(ev) {
    const q = ev.target.value.trim().toLowerCase();
    if (!q) return;
    let hit = -1;
    for (let i = 0; i < N && hit < 0; i++) if (songLabel(i).toLowerCase() === q) hit = i;
    for (let i = 0; i < N && hit < 0; i++) if (songLabel(i).toLowerCase().includes(q)) hit = i;
    if (hit >= 0) { select(hit, false, true); ev.target.value = ""; }
  }

  function renderSummary() {
    const singers = S.singers.filter((s) => s.songs > 0);
    const g = { f: 0, m: 0, "": 0 };
    for (const s of singers) g[(s.gender || "")[0] || ""] += 1;
    const parts = [plural(singers.length, "singer"), plural(N, "song") + " prepared"];
    const failed = S.failed.length ? plural(S.failed.length, "file") + " not prepared" : null;
    if (g.f || g.m) parts.push(g.f + " female, " + g.m + " male" + (g[""] ? ", " + g[""] + " unknown" : ""));
    if (S.genres.length) parts.push("genres: " + S.genres.join(", "));
    const summary = document.getElementById("summary");
    summary.textContent = "";
    summary.append(el("b", {}, parts.join(" · ")));
    if (failed) summary.append(" · ", el("a", { href: "#library-failed" }, failed));
    summary.append(el("span", { class: "muted" }, "  (report made " + S.made.replace("T", " ") + ")"));
    const how = document.getElementById("howto");
    how.textContent = S.map
      ? "Each dot is a song, placed by how its singing voice sounds: dots close together are sung alike. " +
        "Hover to see a song, click it to hear it and the " + S.top_k + " songs by other singers that vocal finds " +
        "sung most alike, with the reason in words."
      : "Pick a song in the library below to hear it.";
    const notes = document.getElementById("notes");
    for (const n of S.notes) notes.append(el("li", {}, n));
    notes.hidden = S.notes.length === 0;
  }

  // -------------------------------------------------------------------------------------------- map
  function categoryOf(i) {
    if (colorBy === "gender") return GENDER_WORDS[S.songs.gender[i]] || "unknown";
    if (colorBy === "genre") return S.songs.genre[i] || "unknown";
    return singerOf(i).name;
  }
  function colorsFor(cats) {
    const out = {};
    cats.forEach((c, k) => {
      if (colorBy === "gender") out[c] = GENDER_COLORS[c] || "#adb5bd";
      else if (c === "unknown") out[c] = "#adb5bd";
      else out[c] = cats.length <= 10 ? TAB10[k] : "hsl(" + ((k * 137.508) % 360).toFixed(1) + ",62%," +
                                                   (k % 2 ? 42 : 55) + "%)";
    });
    return out;
  }

  function toScreen(i) {  // x, y in [0, 1] (each axis scaled on its own, as plot's matplotlib does)
    return [PAD + S.songs.x[i] * (W - 2 * PAD), PAD_TOP + (1 - S.songs.y[i]) * (H - PAD_TOP - PAD)];
  }

  function fitMap() {
    const box = document.getElementById("map-wrap").getBoundingClientRect();
    if (box.width < 50 || box.height < 50) return;
    W = Math.round(box.width);
    H = Math.round(box.height);
    document.getElementById("map").setAttribute("viewBox", "0 0 " + W + " " + H);
    for (let i = 0; i < N; i++) {
      if (!points[i]) continue;
      const [cx, cy] = toScreen(i);
      points[i].setAttribute("cx", cx.toFixed(1));
      points[i].setAttribute("cy", cy.toFixed(1));
    }
    if (selected >= 0) drawSelection(chunks[S.songs.chunk[selected]] && chunks[S.songs.chunk[selected]][S.songs.id[selected]]);
  }

  function renderMap() {
    const map = document.getElementById("map");
    const box = document.getElementById("map-wrap").getBoundingClientRect();
    if (box.width >= 50 && box.height >= 50) { W = Math.round(box.width); H = Math.round(box.height); }
    map.setAttribute("viewBox", "0 0 " + W + " " + H);
    map.setAttribute("preserveAspectRatio", "xMidYMid meet");
    const onMap = S.songs.x.filter((x) => x !== null).length;
    if (!S.map || onMap === 0) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
      t.textContent = "No map yet: train the models and run 'vocal embed' (see the note above).";
      map.append(t);
      document.getElementById("color-by").disabled = true;
      return;
    }
    document.getElementById("map-caption").textContent =
      (S.map.method === "tsne" ? "t-SNE" : "PCA") + " of the timbre embeddings · " + plural(onMap, "song");
    const r = Math.max(2.5, Math.min(7, 260 / Math.sqrt(onMap)));
    const g = svg("g", { id: "points" });
    points = new Array(N).fill(null);
    for (let i = 0; i < N; i++) {
      if (S.songs.x[i] === null) continue;
      const [cx, cy] = toScreen(i);
      const c = svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: r.toFixed(1), class: "pt", "data-i": i,
                                "data-id": S.songs.id[i] });
      points[i] = c;
      g.append(c);
    }
    map.append(g);
    map.append(svg("g", { id: "selection" }));
    const tip = document.getElementById("tip");
    const wrap = document.getElementById("map-wrap");
    map.addEventListener("mousemove", (ev) => {
      const t = ev.target;
      if (!t.classList || !t.classList.contains("pt")) { tip.hidden = true; return; }
      const i = Number(t.getAttribute("data-i"));
      tip.textContent = S.songs.title[i] + " — " + singerOf(i).name;
      const box = wrap.getBoundingClientRect();
      tip.hidden = false;
      const x = ev.clientX - box.left + 12, y = ev.clientY - box.top + 12;
      tip.style.left = Math.min(x, box.width - tip.offsetWidth - 4) + "px";
      tip.style.top = Math.min(y, box.height - tip.offsetHeight - 4) + "px";
    });
    map.addEventListener("mouseleave", () => { tip.hidden = true; });
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(fitMap, 100); });
    map.addEventListener("click", (ev) => {
      const t = ev.target;
      if (t.classList && t.classList.contains("pt")) select(Number(t.getAttribute("data-i")), true, true);
    });
    paint();
  }

  function paint() {
    const legend = document.getElementById("legend");
    legend.textContent = "";
    if (!points.length) return;
    const counts = new Map();
    for (let i = 0; i < N; i++) if (points[i]) counts.set(categoryOf(i), (counts.get(categoryOf(i)) || 0) + 1);
    const cats = [...counts.keys()].sort((a, b) => (a === "unknown") - (b === "unknown") || a.localeCompare(b));
    const colors = colorsFor(cats);
    for (let i = 0; i < N; i++) {
      if (!points[i]) continue;
      const c = categoryOf(i);
      points[i].setAttribute("fill", colors[c]);
      points[i].classList.toggle("dim", hidden.has(c));
    }
    for (const c of cats) {
      const b = el("button", { class: hidden.has(c) ? "off" : "", title: "show or hide " + c,
                               onclick: () => { hidden.has(c) ? hidden.delete(c) : hidden.add(c); paint(); } },
                   el("span", { class: "sw", style: "background:" + colors[c] }), c + " (" + counts.get(c) + ")");
      legend.append(b);
    }
    legend.append(el("span", { class: "hint" }, "click a name to fade its songs"));
  }

  function drawSelection(detail) {
    const g = document.getElementById("selection");
    if (!g) return;
    g.textContent = "";
    if (selected < 0 || !points[selected]) return;
    const [x0, y0] = toScreen(selected);
    const recs = (detail && detail.recs) || [];
    recs.forEach((rec, k) => {
      const j = indexOf[rec[0]];
      if (j === undefined || !points[j]) return;
      const [x, y] = toScreen(j);
      g.append(svg("line", { x1: x0, y1: y0, x2: x, y2: y, class: "link" }));
      g.append(svg("circle", { cx: x, cy: y, r: 9, class: "ring rec" }));
      const t = svg("text", { x: x + 10, y: y - 8, class: "rank" });
      t.textContent = String(k + 1);
      g.append(t);
    });
    g.append(svg("circle", { cx: x0, cy: y0, r: 12, class: "ring" }));
    points[selected].parentNode.append(points[selected]); // on top of its neighbours
  }

  // ------------------------------------------------------------------------------------ song panel
  function select(i, autoplay, setHash) {
    selected = i;
    if (setHash) {
      const h = "#song=" + encodeURIComponent(S.songs.id[i]);
      if (location.hash !== h) history.pushState(null, "", h);
    }
    const card = document.getElementById("song");
    card.textContent = "";
    card.append(el("h2", {}, S.songs.title[i]), el("div", { class: "meta" }, "by " + singerOf(i).name + " · loading…"));
    drawSelection(null);
    loadChunk(S.songs.chunk[i], (err) => {
      if (selected !== i) return;
      if (err) {
        card.append(el("p", { class: "notes" }, "Could not load " + err + "; run 'vocal report' again."));
        return;
      }
      const d = chunks[S.songs.chunk[i]][S.songs.id[i]];
      renderSong(i, d);
      drawSelection(d);
      if (autoplay) {
        const a = card.querySelector("audio");
        if (a) play(a);
      }
    });
  }

  function meta(i, d) {
    const bits = ["by " + singerOf(i).name];
    const gw = GENDER_WORDS[S.songs.gender[i]];
    if (gw && gw !== "unknown") bits.push(gw);
    if (S.songs.genre[i]) bits.push(S.songs.genre[i]);
    if (d.note) bits.push("sings around " + d.note + " (" + Math.round(d.f0_hz) + " Hz)");
    if (d.duration_s) bits.push(mmss(d.duration_s) + " long");
    return bits.join(" · ");
  }

  function clipPlayer(label, src) {
    return el("div", { class: "player" }, el("label", {}, label),
              el("audio", { controls: true, preload: "metadata", src: src }));
  }

  function renderSong(i, d) {
    const card = document.getElementById("song");
    card.textContent = "";
    card.append(el("h2", {}, S.songs.title[i]), el("div", { class: "meta" }, meta(i, d)));
    if (d.clip) {
      const from = mmss(d.clip.start_s), to = mmss(d.clip.start_s + d.clip.seconds);
      card.append(el("div", { class: "players" },
        clipPlayer("The song at " + from + "–" + to + ": its loudest singing, as vocal heard it (" +
                   S.clip.sample_rate / 1000 + " kHz mono)", d.clip.mix),
        clipPlayer("The voice alone: the same seconds after accompaniment removal (" + (d.separation || "none") +
                   "), what the models listen to", d.clip.voice)));
    } else {
      card.append(el("p", { class: "muted" }, "No clip: " + (d.clip_error || "clips were not written") + "."));
    }
    const head = el("div", { class: "recs-head" }, el("h3", {}, "Sung most alike by other singers"));
    if (d.playlist) head.append(el("a", { href: d.playlist, download: true, title: "this song and its matches, " +
                                          "for any music player" }, "playlist (.m3u8)"));
    card.append(head);
    if (!d.recs.length) {
      card.append(el("p", { class: "muted" }, S.weights ? "No other singer's songs to compare with."
                                                        : "No recommendations yet: run 'vocal index'."));
      return;
    }
    const w = S.weights ? S.weights.timbre * S.weights.timbre / (S.weights.timbre ** 2 + S.weights.melody ** 2) : 1;
    card.append(el("p", { class: "muted", style: "margin:0 0 4px;font-size:12px" },
      "Ranked by " + Math.round(100 * w) + "% voice (timbre) + " + Math.round(100 * (1 - w)) +
      "% melody similarity (cosine, 1 = identical)."));
    const ol = el("ol", { class: "recs" });
    d.recs.forEach((rec, k) => {
      const [id, score, ct, cm, why] = rec;
      const j = indexOf[id];
      const title = j === undefined ? id : S.songs.title[j];
      const who = j === undefined ? "" : singerOf(j).name;
      const li = el("li", { "data-id": id },
        el("span", { class: "n" }, String(k + 1)),
        el("span", {}, el("a", { href: "#song=" + encodeURIComponent(id), title: "open this song" }, title),
           " ", el("span", { class: "who" }, "— " + who)),
        el("span", { class: "sims", title: "overall score " + fmt(score, 3) },
           "timbre " + fmt(ct) + " · melody " + fmt(cm),
           el("span", { class: "bar", style: "width:" + Math.max(2, Math.round(40 * Math.max(0, score))) + "px" })),
        el("div", { class: "why" }, why));
      const buttons = el("div", { class: "buttons" });
      if (j !== undefined && S.songs.clip[j]) {  // clip names come from site.js: no other chunk to load
        buttons.append(playButton("▶ song", clipName("mix", id)), playButton("▶ voice only", clipName("voice", id)));
      } else {
        buttons.append(el("span", { class: "muted" }, "no clip"));
      }
      li.append(buttons);
      ol.append(li);
    });
    card.append(ol);
  }

  function clipName(kind, id) { return S.clip.names[kind].replace("{id}", id); }

  function playButton(label, src) {
    const a = el("audio", { preload: "none", src: src });
    const b = el("button", { class: "play", type: "button" }, label);
    b.addEventListener("click", () => { if (a.paused) play(a); else a.pause(); });
    a.addEventListener("play", () => b.classList.add("on"));
    a.addEventListener("pause", () => b.classList.remove("on"));
    a.addEventListener("ended", () => b.classList.remove("on"));
    const wrap = el("span", {}, b, a);
    return wrap;
  }

  // ---------------------------------------------------------------------------------------- library
  function renderLibrary() {
    const sec = document.getElementById("library");
    sec.append(el("h2", {}, "Library"));
    const ok = S.singers.filter((s) => s.songs > 0).length;
    sec.append(el("p", { class: "muted" }, plural(S.singers.length, "singer") + " (" + ok + " with prepared songs), " +
      plural(N, "song") + " prepared. Click a singer to list their songs." +
      (S.clip.seconds ? " Clips are " + S.clip.seconds + " s of Ogg Opus at " + S.clip.kbps + " kbit/s." : "")));
    const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "singer"), el("th", {}, "gender"),
      el("th", {}, "genre"), el("th", { class: "num" }, "songs prepared"), el("th", { class: "num" }, "not prepared"))));
    const tb = el("tbody");
    const bySinger = {};
    for (let i = 0; i < N; i++) (bySinger[S.songs.singer[i]] = bySinger[S.songs.singer[i]] || []).push(i);
    S.singers.forEach((s, k) => {
      const gender = GENDER_WORDS[s.gender || ""] === "unknown" ? "" : GENDER_WORDS[s.gender || ""];
      const tr = el("tr", { class: "singer", title: "show the songs" }, el("td", {}, s.name), el("td", {}, gender),
        el("td", {}, s.genre), el("td", { class: "num" }, s.songs), el("td", { class: "num" }, s.not_prepared || ""));
      let open = null;
      tr.addEventListener("click", () => {
        if (open) { open.remove(); open = null; return; }
        const cell = el("td", { colspan: 5 });
        for (const i of bySinger[k] || []) {
          cell.append(el("a", { href: "#song=" + encodeURIComponent(S.songs.id[i]),
                                onclick: () => document.getElementById("songs").scrollIntoView() }, S.songs.title[i]));
        }
        if (!(bySinger[k] || []).length) cell.append(el("span", { class: "muted" }, "no prepared songs"));
        open = el("tr", { class: "songlist" }, cell);
        tr.after(open);
      });
      tb.append(tr);
    });
    t.append(tb);
    sec.append(t);
    sec.append(el("h3", { id: "library-failed" }, "Files not prepared"));
    if (!S.failed.length) { sec.append(el("p", { class: "muted" }, "Every file was prepared.")); return; }
    const f = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "file"), el("th", {}, "status"),
                                                 el("th", {}, "why"))));
    const fb = el("tbody");
    for (const r of S.failed) fb.append(el("tr", {}, el("td", {}, r.source || ""), el("td", {}, r.status || ""),
                                           el("td", {}, r.reason || "")));
    f.append(fb);
    sec.append(f);
  }

  // ---------------------------------------------------------------------------------------- quality
  const METRIC_WORDS = {
    "singer_id.top1": "singer identification: test song's nearest training song is by the same singer",
    "singer_id.loo_top1": "singer identification, leave-one-out over every balanced song",
    "singer_id.probe": "singer identification by a linear probe",
    "singer_id.map": "same-singer retrieval, mean average precision",
    "singer_id.eer": "same-singer verification, equal error rate (lower is better)",
    "gender.balanced_accuracy": "gender on unseen singers, balanced accuracy",
    "melody.map": "same melody by other singers, mean average precision",
    "index.recall_at_10": "index: share of the exact top 10 that Annoy returns",
  };

  function renderQuality() {
    const sec = document.getElementById("quality");
    sec.append(el("h2", {}, "Quality"));
    const ev = S.evaluation;
    if (!ev) {
      sec.append(el("p", { class: "muted" }, "No evaluation yet: run 'vocal evaluate', then 'vocal report' again."));
    } else {
      const rep = ev.report;
      sec.append(el("p", { class: "muted" }, "The last 'vocal evaluate' (" + (rep.report || "") + ", " +
        plural(rep.n_songs || 0, "song") + "): each number next to a classical baseline computed in the same run."));
      const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "metric"), el("th", {}, "what it measures"),
        el("th", { class: "num" }, "vocal"), el("th", { class: "num" }, "baseline"), el("th", {}, "baseline is"))));
      const tb = el("tbody");
      for (const r of ev.rows) {
        const cls = r.vocal_at_least_baseline === null ? "num" : "num " + (r.vocal_at_least_baseline ? "good" : "bad");
        tb.append(el("tr", {}, el("td", {}, el("code", {}, r.metric)), el("td", {}, METRIC_WORDS[r.metric] || ""),
          el("td", { class: cls }, fmt(r.vocal, 3)), el("td", { class: "num" }, fmt(r.baseline, 3)),
          el("td", {}, r.baseline_is)));
      }
      t.append(tb);
      sec.append(t);
      for (const n of rep.notes || []) sec.append(el("p", { class: "muted" }, "note: " + n));
    }
    sec.append(el("h3", {}, "Training"));
    if (!S.curves.length) {
      sec.append(el("p", { class: "muted" }, "No training runs yet: 'vocal train-contrastive', 'vocal train-tcae'."));
      return;
    }
    const box = el("div", { class: "charts" });
    for (const c of S.curves) {
      for (const x of ["step", "epoch"]) {
        const series = c.series.filter((s) => s.x === x);
        if (series.length) box.append(chart(c.task + (x === "step" ? ": training loss per step" :
                                                      ": validation per epoch"), c.runs[c.runs.length - 1], x, series));
      }
    }
    sec.append(box);
  }

  function chart(title, run, xname, series) {
    const cw = 580, ch = 200, L = 52, R = 12, T = 10, B = 24;
    const xs = series.flatMap((s) => s.xs), ys = series.flatMap((s) => s.ys);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.06;
    y0 -= pad; y1 += pad;
    const sx = (x) => L + (x - x0) / (x1 - x0) * (cw - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (ch - T - B);
    const s = svg("svg", { viewBox: "0 0 " + cw + " " + ch, preserveAspectRatio: "xMidYMid meet" });
    s.append(svg("line", { x1: L, y1: ch - B, x2: cw - R, y2: ch - B, class: "axis" }));
    s.append(svg("line", { x1: L, y1: T, x2: L, y2: ch - B, class: "axis" }));
    const tick = (x, y, text, anchor) => {
      const t = svg("text", { x: x, y: y, class: "tick", "text-anchor": anchor });
      t.textContent = text;
      s.append(t);
    };
    for (const v of [y0 + pad, (y0 + y1) / 2, y1 - pad]) tick(L - 5, sy(v) + 4, Number(v.toPrecision(3)), "end");
    const xs0 = Math.min(...xs), xs1 = Math.max(...xs);
    tick(sx(xs0), ch - 6, xname + " " + Math.round(xs0), "start");
    if (xs1 !== xs0) tick(sx(xs1), ch - 6, Math.round(xs1), "end");
    const keys = el("div", { class: "keys" });
    series.forEach((se, k) => {
      const color = TAB10[k % TAB10.length];
      const d = se.xs.map((x, n) => (n ? "L" : "M") + sx(x).toFixed(1) + " " + sy(se.ys[n]).toFixed(1)).join("");
      s.append(svg("path", { d: d, class: "series", stroke: color,
                             "stroke-dasharray": se.key === "ln_n" ? "5 4" : "none" }));
      if (se.xs.length <= 40) {  // few points (epochs): show each one
        se.xs.forEach((x, n) => s.append(svg("circle", { cx: sx(x), cy: sy(se.ys[n]), r: 3, fill: color })));
      }
      const last = se.ys[se.ys.length - 1];
      keys.append(el("span", {}, el("span", { class: "line", style: "background:" + color }),
                     se.label + " (last " + fmt(last, 3) + ")"));
    });
    return el("div", { class: "chart" }, el("h4", {}, title, " ", el("span", { class: "muted" }, "run " + run)), s, keys);
  }
})();
