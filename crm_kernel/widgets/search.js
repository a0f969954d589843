// The search box and the Ctrl+K command palette (crm_kernel/widgets/search.py): an anywidget
// ES module, no build step, no CDN.
//
// mode: "box" (an input and its results, where the widget is displayed) | "palette" (a button
// where it is displayed; Ctrl+K / ⌘K opens an overlay over the whole page).
// The front end sets `query` as the user types (debounced); the kernel answers with `results`
// and `answered` (the text they answer) and `error`. A result is
// {kind: "record", entity, id, title, subtitle, label, url} or (palette, from `apps`)
// {kind: "app", id, title, subtitle, url}; `url` is relative to the server's base URL.
// Text from the database is only ever set as textContent.

const DEBOUNCE_MS = 150;
const MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Lower case, accents removed: "José" and "jose" are the same to the app filter.
function fold(text) {
  return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function normalised(text) {
  return String(text || "").split(/\s+/).filter(Boolean).join(" ");
}

// A page of this server: the server's root (where this page's "voila/render/" begins) plus
// the result's relative URL. (The body's data-base-url is Voilà's API root, ".../voila/".)
function pageUrl(url) {
  const path = window.location.pathname;
  const at = path.indexOf("/voila/render/");
  const root = at >= 0 ? path.slice(0, at + 1) : "/";
  return new URL(root + url, window.location.origin).href;
}

// The input, the list and the keys shared by both faces. `extra(text)` adds items the front
// end finds itself (the palette's apps), listed before the records.
function finder(model, { input, list, status, extra, choose }) {
  let timer = null;
  let active = 0;
  let items = [];
  let enterPending = false; // Enter pressed before the results of the text on screen arrived

  function sent() {
    return normalised(input.value);
  }

  function fresh() {
    return normalised(model.get("answered")) === sent();
  }

  function draw() {
    const text = sent();
    // While the kernel searches, the previous text's results stay, dimmed.
    const records = text ? model.get("results") || [] : [];
    items = [...(extra ? extra(text) : []), ...records];
    if (active >= items.length) active = Math.max(items.length - 1, 0);
    list.replaceChildren(...items.map((item, i) => h("li", {
      class: `crm-search-item crm-search-${item.kind}` + (i === active ? " crm-search-active" : ""),
      role: "option", "aria-selected": i === active ? "true" : "false",
      dataset: { kind: item.kind, entity: item.entity || "", id: item.id },
      onmousemove: () => { if (active !== i) { active = i; mark(); } },
      onmousedown: (event) => event.preventDefault(), // keep the focus in the input
      onclick: () => choose(item),
    },
    h("span", { class: "crm-search-label" }, item.label || item.subtitle),
    h("span", { class: "crm-search-title" }, item.title),
    item.kind === "record" ? h("span", { class: "crm-search-subtitle" }, item.subtitle) : null)));
    list.classList.toggle("crm-search-stale", Boolean(text) && !fresh());
    const error = model.get("error");
    if (!text) status.textContent = "";
    else if (!fresh()) status.textContent = "Searching…";
    else if (error) status.textContent = error;
    else if (!items.length) status.textContent = `Nothing matches “${text}”.`;
    else status.textContent = "";
    status.classList.toggle("crm-search-error", Boolean(text) && fresh() && Boolean(error));
    if (enterPending && fresh()) {
      enterPending = false;
      if (items[active]) choose(items[active]);
    }
  }

  function mark() {
    [...list.children].forEach((li, i) => {
      li.classList.toggle("crm-search-active", i === active);
      li.setAttribute("aria-selected", i === active ? "true" : "false");
      if (i === active && li.scrollIntoView) li.scrollIntoView({ block: "nearest" });
    });
  }

  function send() {
    clearTimeout(timer);
    timer = null;
    const text = sent();
    if (text === normalised(model.get("query"))) return;
    model.set("query", text);
    model.save_changes();
  }

  function onInput() {
    active = 0;
    draw();
    clearTimeout(timer);
    timer = setTimeout(send, DEBOUNCE_MS);
  }

  function onKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!items.length) return;
      active = (active + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      mark();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (timer !== null) send(); // what is typed is searched now, not after the pause
      const text = sent();
      const appsOnly = items.length && items[active] && items[active].kind === "app";
      if (!text || fresh() || appsOnly) {
        if (items[active]) choose(items[active]);
      } else {
        enterPending = true; // chosen when the answer arrives
      }
    }
  }

  input.addEventListener("input", onInput);
  input.addEventListener("keydown", onKey);
  const listeners = [["change:results", draw], ["change:answered", draw], ["change:error", draw]];
  for (const [name, fn] of listeners) model.on(name, fn);
  draw();
  return {
    draw,
    reset() {
      input.value = "";
      active = 0;
      enterPending = false;
      draw();
    },
    cleanup() {
      clearTimeout(timer);
      for (const [name, fn] of listeners) model.off(name, fn);
    },
  };
}

function open(model, item) {
  if (model.get("mode") === "box") {
    model.set("chosen", item);
    model.save_changes();
    if (!model.get("open_pages")) return;
  }
  window.location.assign(pageUrl(item.url));
}

function renderBox({ model, el }) {
  const input = h("input", {
    class: "crm-search-input", type: "search", autocomplete: "off", spellcheck: "false",
    "aria-label": "Search", placeholder: model.get("placeholder"),
  });
  const status = h("div", { class: "crm-search-status", role: "status" });
  const list = h("ul", { class: "crm-search-results", role: "listbox" });
  el.append(h("div", { class: "crm-search crm-search-box" }, input, status, list));
  const found = finder(model, { input, list, status, choose: (item) => open(model, item) });
  if (model.get("autofocus")) requestAnimationFrame(() => input.focus());
  return () => found.cleanup();
}

function renderPalette({ model, el }) {
  const keys = MAC ? "⌘K" : "Ctrl K";
  el.append(h("div", { class: "crm-search crm-palette-launcher" },
    h("button", { class: "crm-palette-button", type: "button", title: `Find a record or an app (${keys})`,
      onclick: () => show() }, "Find… ", h("kbd", {}, keys))));

  const input = h("input", {
    class: "crm-search-input crm-palette-input", type: "search", autocomplete: "off", spellcheck: "false",
    "aria-label": "Find a record or an app", placeholder: model.get("placeholder"),
  });
  const status = h("div", { class: "crm-search-status", role: "status" });
  const list = h("ul", { class: "crm-search-results", role: "listbox" });
  const hint = h("div", { class: "crm-palette-hint" }, "↑ ↓ to pick · Enter to open · Esc to close");
  const dialog = h("div", { class: "crm-search crm-palette", role: "dialog", "aria-modal": "true",
    "aria-label": "Find" }, input, status, list, hint);
  const backdrop = h("div", { class: "crm-palette-backdrop", hidden: true,
    onmousedown: (event) => { if (event.target === backdrop) hide(); } }, dialog);
  document.body.append(backdrop);

  function apps(text) {
    const wanted = fold(text);
    return (model.get("apps") || []).filter((app) => !wanted || fold(app.title).includes(wanted)
      || fold(app.id).includes(wanted));
  }
  const found = finder(model, {
    input, list, status, extra: apps,
    choose: (item) => { hide(); open(model, item); },
  });

  function show() {
    backdrop.hidden = false;
    found.reset();
    input.focus();
  }

  function hide() {
    backdrop.hidden = true;
  }

  // One palette answers the shortcut, whichever was displayed first on the page.
  const owner = Symbol("palette");
  if (!window.__crmPalette) window.__crmPalette = owner;
  function onKey(event) {
    if (window.__crmPalette !== owner) return;
    const shortcut = (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey
      && event.key && event.key.toLowerCase() === model.get("shortcut");
    if (shortcut) {
      event.preventDefault();
      event.stopPropagation();
      if (backdrop.hidden) show();
      else hide();
    } else if (event.key === "Escape" && !backdrop.hidden) {
      event.preventDefault();
      hide();
    }
  }
  window.addEventListener("keydown", onKey, true);
  const redraw = () => found.draw();
  model.on("change:apps", redraw);

  return () => {
    window.removeEventListener("keydown", onKey, true);
    model.off("change:apps", redraw);
    found.cleanup();
    backdrop.remove();
    if (window.__crmPalette === owner) window.__crmPalette = undefined;
  };
}

function render(context) {
  return context.model.get("mode") === "palette" ? renderPalette(context) : renderBox(context);
}

export default { render };
