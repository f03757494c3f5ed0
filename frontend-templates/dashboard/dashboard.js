// The dashboard's one script: progressive enhancement only. Every form and
// link works without it; it adds confirm dialogs, copy buttons and relative
// times. Loaded from our own origin (the CSP allows nothing else).
"use strict";

// A form with data-confirm asks once before it is sent.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// A button with data-copy="<id>" copies that element's text. Such buttons
// are hidden until this script shows them (without it, the text is there to
// select by hand).
function enableCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = "value" in source ? source.value : source.textContent;
      try {
        await navigator.clipboard.writeText(text.trim());
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Select and copy";
      }
    });
  }
}

// <time datetime="…" data-relative> shows "12 min ago", the exact time
// (already the element's text) staying on hover and focus.
function relativeTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[data-relative]")) {
    const at = Date.parse(el.getAttribute("datetime"));
    if (Number.isNaN(at)) continue;
    const seconds = Math.round((at - now) / 1000);
    const abs = Math.abs(seconds);
    const [value, unit] =
      abs < 60 ? [seconds, "second"] :
      abs < 3600 ? [Math.round(seconds / 60), "minute"] :
      abs < 86400 ? [Math.round(seconds / 3600), "hour"] :
      [Math.round(seconds / 86400), "day"];
    const exact = el.textContent;
    el.title = exact;
    el.setAttribute("aria-label", exact);
    el.textContent = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(value, unit);
    el.tabIndex = 0;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  enableCopyButtons();
  relativeTimes();
});

// domains: a pending domain's page (data-poll on its state section) asks
// for the domain's state every few seconds and updates the words in its
// aria-live region, until the domain is no longer pending. Without this
// script, reloading the page shows the same.
function pollDomainState() {
  const section = document.querySelector("[data-poll]");
  if (!section) return;
  const url = section.dataset.poll;
  const set = (id, text) => {
    const el = document.getElementById(id);
    if (el && text !== undefined && el.textContent !== text) el.textContent = text;
  };
  const tick = async () => {
    try {
      const res = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!res.ok) return;
      const state = await res.json();
      set("domain-headline", state.headline);
      set("domain-last-check", state.last_check || "Not checked yet");
      set("domain-checked-at", state.checked_at || "—");
      set("domain-next", state.next);
      if (!state.pending) {
        window.location.reload();
        return;
      }
    } catch (_) {
      // A failed poll changes nothing; the next one tries again.
    }
    window.setTimeout(tick, 5000);
  };
  window.setTimeout(tick, 5000);
}

document.addEventListener("DOMContentLoaded", pollDomainState);
