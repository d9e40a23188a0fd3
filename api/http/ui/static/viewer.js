// Keeps live pages of the viewer current without a front-end build: a run's page follows
// its event stream, a batch's page asks again every few seconds. Each refresh fetches the
// page again and swaps in the parts that changed (data-live-part), so a form being
// filled in is left alone unless the run's controls themselves changed.
"use strict";

const REFRESH_DELAY_MS = 150;

function openDetails(root) {
  return new Set([...root.querySelectorAll("details[open][id]")].map((d) => d.id));
}

async function refresh(root) {
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const open = openDetails(document);
  for (const part of root.querySelectorAll("[data-live-part]")) {
    const name = part.dataset.livePart;
    const next = fresh.querySelector(`[data-live-part="${name}"]`);
    if (next && next.innerHTML !== part.dataset.rendered) {
      part.innerHTML = next.innerHTML;
      part.dataset.rendered = next.innerHTML;
    }
  }
  for (const id of open) document.getElementById(id)?.setAttribute("open", "");
  showPreviews(root);
  const stillLive = fresh.querySelector("[data-live-events], [data-live-poll]");
  return Boolean(stillLive);
}

function remember(root) {
  for (const part of root.querySelectorAll("[data-live-part]")) part.dataset.rendered = part.innerHTML;
}

function followEvents(root) {
  let pending = null;
  const source = new EventSource(root.dataset.liveEvents);
  const later = () => {
    if (pending) return;
    pending = setTimeout(async () => { pending = null; await refresh(root); }, REFRESH_DELAY_MS);
  };
  for (const type of ["message", "status", "reward", "evaluation", "log", "artifact", "patch", "summary", "callback"]) {
    source.addEventListener(type, later);
  }
  source.addEventListener("end", () => { source.close(); setTimeout(() => refresh(root), REFRESH_DELAY_MS); });
}

function poll(root) {
  const every = Number(root.dataset.livePoll) || 2000;
  const again = async () => { if (await refresh(root)) setTimeout(again, every); };
  setTimeout(again, every);
}

async function showPreviews(root) {
  for (const pre of root.querySelectorAll("pre[data-preview]:not([data-shown])")) {
    pre.dataset.shown = "1";
    try {
      const response = await fetch(pre.dataset.preview);
      const text = await response.text();
      pre.textContent = text.length > 4000 ? text.slice(0, 4000) + "\n…" : text;
    } catch (error) {
      pre.textContent = "(preview not available)";
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const root of document.querySelectorAll("[data-live-events]")) { remember(root); followEvents(root); }
  for (const root of document.querySelectorAll("[data-live-poll]")) { remember(root); poll(root); }
  showPreviews(document);
});
