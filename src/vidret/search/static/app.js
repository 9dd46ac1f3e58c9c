// The search page: query -> GET /search -> result cards; a click plays the video.
"use strict";

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const kSelect = document.getElementById("k");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const player = document.getElementById("player");
const video = document.getElementById("video");
const nowPlaying = document.getElementById("now-playing");

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
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
  title.textContent = `${hit.rank}. ${hit.video_id}`;
  title.title = hit.video_id;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = hit.score.toFixed(3);
  meta.append(title, score);
  el.append(thumb, meta);
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
    const url = new URL(hit.video_url, location.href);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      setStatus(`${hit.video_id}: not a web address`, true);
      return;
    }
    window.open(url.href, "_blank", "noopener");
    return;
  }
  player.hidden = false;
  video.src = hit.video_url;
  nowPlaying.textContent = hit.video_id;
  video.play().catch(() => {}); // autoplay may be refused; the controls remain
}

async function search(query, k) {
  setStatus("searching...");
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
  results.replaceChildren(...body.results.map(card));
  const took = body.encode_ms + body.search_ms;
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
