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

// accounts: the sign-up form's slug field says, as it is typed, whether
// the slug is available, taken or not valid (in words, announced politely).
// Without this script the form still answers a taken slug as a field error.
function slugChecks() {
  for (const input of document.querySelectorAll("input[data-slug-check]")) {
    const status = document.getElementById("slug-status");
    if (!status) continue;
    let timer;
    let asked = 0;
    const check = async () => {
      const slug = input.value.trim();
      const mine = ++asked;
      if (slug === "") {
        status.textContent = "";
        status.className = "slug-status";
        return;
      }
      try {
        const url = input.dataset.slugCheck + "?slug=" + encodeURIComponent(slug);
        const res = await fetch(url, { headers: { Accept: "application/json" } });
        if (!res.ok) return;
        const answer = await res.json();
        // A slower answer to an older value must not overwrite a newer one.
        if (mine !== asked) return;
        status.textContent = answer.message;
        status.className = "slug-status " + answer.state;
      } catch (_) {
        // The check is a convenience: the form's own answer stays the rule.
      }
    };
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    });
    if (input.value.trim() !== "") check();
  }
}

document.addEventListener("DOMContentLoaded", slugChecks);
// subscribers: a file chosen next to the import box is read into it (the
// box is what the form sends; without this script, pasting does the same).
document.addEventListener("DOMContentLoaded", () => {
  for (const wrap of document.querySelectorAll("[data-file-read]")) {
    const box = document.getElementById(wrap.dataset.fileRead);
    const input = wrap.querySelector("input[type=file]");
    if (!box || !input) continue;
    wrap.hidden = false;
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (file) box.value = await file.text();
    });
  }
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
