// The search page: query -> GET /search -> result cards; a click plays the video.
"use strict";

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const kSelect = document.getElementById("k");
const statusLine = document.getElementById("status");
const conceptsLine = document.getElementById("concepts");
const results = document.getElementById("results");
const player = document.getElementById("player");
const video = document.getElementById("video");
const nowPlaying = document.getElementById("now-playing");

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function formatDuration(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function isWebAddress(address) {
  try {
    const url = new URL(address, location.href);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

// Cosines read well to 3 decimals; zero-shot scores are small: 3 significant digits.
function formatScore(value) {
  return Math.abs(value) >= 0.1 ? value.toFixed(3) : value.toPrecision(3);
}

function card(hit) {
  const el = document.createElement("article");
  el.className = "card";
  el.dataset.videoId = hit.video_id;
  const thumb = hit.thumbnail_url ? document.createElement("img") : document.createElement("div");
  if (hit.thumbnail_url) {
    thumb.src = hit.thumbnail_url;
    thumb.alt = hit.video_id;
    thumb.loading = "lazy";
  } else {
    thumb.className = "no-thumb";
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const title = document.createElement("span");
  title.className = "title";
  // What the video shows, in words where the dataset has them, else its file name.
  const name = hit.caption || hit.file_name || hit.video_id;
  title.textContent = `${hit.rank}. ${name}`;
  title.title = `${name} (${hit.video_id})`;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = formatScore(hit.score);
  meta.append(title, score);
  const details = document.createElement("div");
  details.className = "details";
  const facts = document.createElement("span");
  facts.className = "facts";
  facts.textContent = [
    hit.caption && hit.file_name ? hit.file_name : hit.video_id,
    hit.start != null ? `at ${formatDuration(hit.start)}–${formatDuration(hit.end)}` : null,
    hit.duration != null ? formatDuration(hit.duration) : null,
  ].filter(Boolean).join(" · ");
  details.append(facts);
  if (hit.evidence) {
    // A zero-shot hit: the frame and concept that matched.
    const why = document.createElement("span");
    why.className = "evidence";
    const at = hit.evidence.time != null
      ? formatDuration(hit.evidence.time)
      : `frame ${hit.evidence.frame + 1}`;
    why.textContent = `matched: ${hit.evidence.concept} at ${at}`;
    details.append(why);
  }
  if (hit.source_url && isWebAddress(hit.source_url)) {
    // A video known only by its features: where to watch it.
    const source = document.createElement("a");
    source.className = "source";
    source.href = new URL(hit.source_url, location.href).href;
    source.target = "_blank";
    source.rel = "noopener noreferrer";
    source.textContent = "source";
    source.addEventListener("click", (event) => event.stopPropagation());
    details.append(source);
  }
  el.append(thumb, meta, details);
  el.addEventListener("click", () => play(hit));
  return el;
}

function play(hit) {
  if (!hit.video_url) {
    setStatus(`${hit.video_id}: no playable file in this index`, true);
    return;
  }
  if (!hit.video_url.startsWith("/videos/")) {
    // Not a local file (e.g. a dataset's source URL): open it where it lives, and only
    // if it is a web address (the server sends no others; a page never runs a link).
    if (!isWebAddress(hit.video_url)) {
      setStatus(`${hit.video_id}: not a web address`, true);
      return;
    }
    window.open(new URL(hit.video_url, location.href).href, "_blank", "noopener");
    return;
  }
  player.hidden = false;
  // A moment of a long video: a media fragment makes the player start at its start and
  // pause at its end (the controls still reach the rest).
  const moment = hit.start != null ? `#t=${hit.start},${hit.end}` : "";
  video.src = hit.video_url + moment;
  nowPlaying.textContent = hit.start != null
    ? `${hit.video_id}, ${formatDuration(hit.start)}–${formatDuration(hit.end)}`
    : hit.video_id;
  video.play().catch(() => {}); // autoplay may be refused; the controls remain
}

// A zero-shot (or concept-fused) index reads the query as ImageNet concepts: say which,
// with their weights, so a surprising ranking can be understood.
function showConcepts(concepts) {
  const entries = Object.entries(concepts || {});
  conceptsLine.hidden = entries.length === 0;
  conceptsLine.textContent = entries.length
    ? "read as ImageNet concepts: " +
      entries.map(([name, weight]) => `${name} (${weight.toFixed(2)})`).join(", ")
    : "";
}

async function search(query, k) {
  setStatus("searching...");
  showConcepts(null);
  results.replaceChildren();
  const params = new URLSearchParams({ q: query, k: String(k) });
  let body;
  try {
    const response = await fetch(`/search?${params}`);
    body = await response.json();
    if (!response.ok) {
      setStatus(body.error || `error ${response.status}`, true);
      return;
    }
  } catch (err) {
    setStatus(`the server did not answer (${err})`, true);
    return;
  }
  const took = body.encode_ms + body.search_ms;
  showConcepts(body.concepts);
  if (body.below_floor) {
    // Ten weak hits look like answers; say there is no good match, offer them on request.
    const best = body.results.length ? formatScore(body.results[0].similarity) : "none";
    setStatus(
      `no good match for "${body.query}": the best video scores ${best}, below this ` +
        `index's floor of ${formatScore(body.score_floor)} (${took.toFixed(1)} ms)`,
    );
    const more = document.createElement("button");
    more.id = "show-weak";
    more.type = "button";
    more.textContent = `show the ${body.results.length} closest anyway`;
    more.addEventListener("click", () => results.replaceChildren(...body.results.map(card)));
    results.replaceChildren(more);
    return;
  }
  results.replaceChildren(...body.results.map(card));
  setStatus(`${body.results.length} results for "${body.query}" (${took.toFixed(1)} ms)`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = input.value.trim();
  if (!query) {
    setStatus("type what you are looking for", true);
    return;
  }
  history.replaceState(null, "", `?q=${encodeURIComponent(query)}&k=${kSelect.value}`);
  search(query, Number(kSelect.value));
});

// A shared link (?q=...&k=...) runs its search on load.
const initial = new URLSearchParams(location.search);
if (initial.get("q")) {
  input.value = initial.get("q");
  if (initial.get("k")) kSelect.value = initial.get("k");
  search(input.value, Number(kSelect.value));
}
