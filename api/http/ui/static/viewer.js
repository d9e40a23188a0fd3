// Keeps live pages of the viewer current without a front-end build: a run's page follows
// its event stream, a batch's page asks again every few seconds. Each refresh fetches the
// page again and swaps in the parts that changed (data-live-part; a part with a
// data-live-key is swapped only when its key changes). What the user typed into a swapped
// part, and which details were open, are kept.
"use strict";

// Events closer together than this are shown by one refresh.
const REFRESH_DELAY_MS = 300;
// After a failed refresh or a lost stream, try again this much later.
const RETRY_MS = 5000;
const PREVIEW_BYTES = 4096;

function signature(part) {
  return part.dataset.liveKey ?? part.innerHTML;
}

function typedValues(part) {
  const typed = new Map();
  for (const field of part.querySelectorAll("textarea[name], input[name]:not([type=hidden])")) {
    if (field.type === "checkbox") typed.set(field.name, field.checked);
    else if (field.value) typed.set(field.name, field.value);
  }
  return typed;
}

function restoreTyped(part, typed) {
  for (const [name, value] of typed) {
    const field = part.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!field) continue;
    if (field.type === "checkbox") field.checked = value;
    else field.value = value;
  }
}

function swapPart(part, next) {
  const typed = typedValues(part);
  const open = new Set([...part.querySelectorAll("details[open][id]")].map((d) => d.id));
  part.innerHTML = next.innerHTML;
  if (next.dataset.liveKey !== undefined) part.dataset.liveKey = next.dataset.liveKey;
  restoreTyped(part, typed);
  for (const id of open) document.getElementById(id)?.setAttribute("open", "");
}

// Swaps the changed parts in; answers whether the page is still live.
async function refresh(root) {
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`the page answered ${response.status}`);
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const part of root.querySelectorAll("[data-live-part]")) {
    const next = fresh.querySelector(`[data-live-part="${part.dataset.livePart}"]`);
    if (next && signature(next) !== part.dataset.rendered) {
      swapPart(part, next);
      part.dataset.rendered = signature(next);
    }
  }
  showPreviews(root);
  return Boolean(fresh.querySelector("[data-live-events], [data-live-poll]"));
}

function remember(root) {
  for (const part of root.querySelectorAll("[data-live-part]")) part.dataset.rendered = signature(part);
}

// One refresh at a time; events that arrive meanwhile are shown by one more after it.
function refresher(root) {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      await refresh(root);
    } catch (error) {
      setTimeout(run, RETRY_MS);
    } finally {
      running = false;
      if (again) { again = false; setTimeout(run, REFRESH_DELAY_MS); }
    }
  };
  return run;
}

function followEvents(root) {
  const refreshSoon = refresher(root);
  let timer = null;
  const later = () => {
    if (timer === null) timer = setTimeout(() => { timer = null; refreshSoon(); }, REFRESH_DELAY_MS);
  };
  const source = new EventSource(root.dataset.liveEvents);
  for (const type of root.dataset.eventTypes.split(",")) source.addEventListener(type, later);
  source.addEventListener("end", () => { source.close(); later(); });
  // A stream the browser gave up on (its token expired, the API restarted): load the page
  // again, which opens a new stream with a new token.
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setTimeout(() => window.location.reload(), RETRY_MS);
  };
}

function poll(root) {
  const every = Number(root.dataset.livePoll) || 2000;
  const again = async () => {
    try {
      if (await refresh(root)) setTimeout(again, every);
    } catch (error) {
      setTimeout(again, RETRY_MS);
    }
  };
  setTimeout(again, every);
}

async function showPreviews(root) {
  for (const pre of root.querySelectorAll("pre[data-preview]:not([data-shown])")) {
    pre.dataset.shown = "1";
    try {
      const response = await fetch(pre.dataset.preview, { headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
      if (!response.ok) throw new Error(`${response.status}`);
      const text = (await response.text()).slice(0, PREVIEW_BYTES);
      pre.textContent = text.length >= PREVIEW_BYTES ? text + "\n…" : text;
    } catch (error) {
      pre.textContent = "(no preview: the artifact could not be read)";
    }
  }
}

// A message form gets its id when it is sent, so that sending it twice queues it once.
function freshIds() {
  document.addEventListener("submit", (event) => {
    const id = event.target.querySelector("[data-fresh-id]");
    if (id && !id.value) {
      // getRandomValues, unlike randomUUID, also works on a page served over plain http.
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id.value = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  freshIds();
  for (const root of document.querySelectorAll("[data-live-events]")) { remember(root); followEvents(root); }
  for (const root of document.querySelectorAll("[data-live-poll]")) { remember(root); poll(root); }
  showPreviews(document);
});
