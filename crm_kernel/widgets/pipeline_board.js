// The pipeline board's front end: an anywidget ES module, no build step, no CDN.
//
// State comes from the synced traits (columns, filters, sort, options, notice, prompt, panel,
// connection); the user's actions go to Python as custom messages ({type, request, ...}),
// answered by a {type: "reply", request, ok, kind, message} message once the traits are up to
// date. Text from the database is only ever set as textContent.
// connection: "live" | "reconnecting" | "offline" (PipelineBoard.connection).

const CONNECTION = {
  live: ["● live", "Updates live as others work"],
  reconnecting: ["◌ reconnecting…", "Lost the connection to the database; retrying. The board reloads when it is back (↻ retries now)."],
  offline: ["○ offline", "Not listening for changes: reload the page to see other people's work"],
};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") el.style.cssText = value;
    else if (key === "value") el.value = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

function amount(text) {
  return text === null || text === undefined ? null : Number(text);
}

function money(text, currency) {
  const number = amount(text);
  if (number === null) return "no value";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD", maximumFractionDigits: 0 }).format(number);
  } catch (e) {
    return `${whole.format(number)} ${currency || ""}`.trim();
  }
}

// A record's page (dashboards/record.ipynb), relative to the page the board is on.
function recordUrl(app, entity, id) {
  return `${app || "record.ipynb"}?${new URLSearchParams({ entity, id })}`;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return iso.length <= 10 ? date.toLocaleDateString(undefined, { timeZone: "UTC" }) : date.toLocaleString();
}

function render({ model, el }) {
  const root = h("div", { class: "crm-board" });
  el.append(root);
  let requests = 0;
  const waiting = new Map();
  let dragging = null; // deal id while a card is dragged
  let deferred = false; // a redraw that waits for the drag to end
  let panelShown = null; // "id@version" of the panel form on screen
  let noticeTimer = null;

  function request(type, payload = {}) {
    const id = ++requests;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      model.send({ type, request: id, ...payload });
    });
  }

  function onMessage(msg) {
    if (!msg || msg.type !== "reply") return;
    drawColumns(); // the traits are current now: undo anything optimistic
    const resolve = waiting.get(msg.request);
    waiting.delete(msg.request);
    if (resolve) resolve(msg);
  }
  model.on("msg:custom", onMessage);

  // -- layout ----------------------------------------------------------------------------------
  const toolbar = h("div", { class: "pb-toolbar", role: "toolbar", "aria-label": "Board filters" });
  const notice = h("div", { class: "pb-notice", role: "status", "aria-live": "polite", hidden: true });
  const prompt = h("form", { class: "pb-prompt", hidden: true });
  const board = h("div", { class: "pb-columns" });
  const panel = h("aside", { class: "pb-panel", hidden: true, "aria-label": "Deal" });
  root.append(toolbar, notice, prompt, h("div", { class: "pb-body" }, board, panel));

  // -- toolbar ---------------------------------------------------------------------------------
  function setFilters(changes) {
    model.set("filters", { ...model.get("filters"), ...changes });
    model.save_changes();
  }

  function drawToolbar() {
    const filters = model.get("filters") || {};
    const options = model.get("options") || {};
    const owner = h("select", { class: "pb-owner", "aria-label": "Owner", onchange: (e) => setFilters({ owner: e.target.value || null }) },
      h("option", { value: "" }, "Everyone"),
      h("option", { value: "mine" }, "Mine"),
      (options.owners || []).map((u) => h("option", { value: u.id }, u.name)));
    owner.value = filters.owner || "";
    const quick = (options.quick || []).map((q) => {
      const on = (filters.quick || []).includes(q.id);
      return h("button", {
        type: "button", class: `pb-quick${on ? " on" : ""}`, "aria-pressed": on ? "true" : "false", dataset: { quick: q.id },
        onclick: () => {
          const now = new Set(filters.quick || []);
          if (on) now.delete(q.id); else now.add(q.id);
          setFilters({ quick: [...now] });
        },
      }, q.label);
    });
    const view = h("select", { class: "pb-view", "aria-label": "Saved view", onchange: (e) => setFilters({ view: e.target.value || null }) },
      h("option", { value: "" }, "All deals"),
      (options.views || []).map((v) => h("option", { value: v.id }, v.name)));
    view.value = filters.view || "";
    const search = h("input", {
      type: "search", class: "pb-search", placeholder: "Search title or company", "aria-label": "Search", value: filters.search || "",
      onchange: (e) => setFilters({ search: e.target.value }),
    });
    const sort = h("select", { class: "pb-sort", "aria-label": "Sort cards by", onchange: (e) => { model.set("sort", e.target.value); model.save_changes(); } },
      (options.sorts || []).map((s) => h("option", { value: s.id }, s.label)));
    sort.value = model.get("sort");
    toolbar.replaceChildren(
      h("label", {}, "Owner ", owner), h("span", { class: "pb-quicks" }, quick), h("label", {}, "View ", view), search,
      h("label", {}, "Sort ", sort),
      h("button", { type: "button", class: "pb-refresh", title: "Reload the board", onclick: () => request("refresh") }, "↻"),
      badge,
      h("span", { class: "pb-hint" }, "Drag cards between columns, or focus a card and press ← / →; Enter opens it."));
  }

  // The connection's state, redrawn on its own so that a change never disturbs the toolbar's inputs.
  const badge = h("span", { role: "status" });
  function drawConnection() {
    const state = CONNECTION[model.get("connection")] ? model.get("connection") : "offline";
    const [label, explained] = CONNECTION[state];
    badge.className = `pb-connection pb-${state}`;
    badge.dataset.state = state;
    badge.title = explained;
    badge.textContent = label;
  }

  // -- notice ----------------------------------------------------------------------------------
  function drawNotice() {
    const n = model.get("notice") || {};
    clearTimeout(noticeTimer);
    if (!n.text) { notice.hidden = true; return; }
    notice.hidden = false;
    notice.className = `pb-notice pb-notice-${n.kind || "info"}`;
    notice.replaceChildren(h("span", { class: "pb-notice-text" }, n.text),
      h("button", { type: "button", class: "pb-dismiss", "aria-label": "Dismiss", onclick: () => request("dismiss") }, "×"));
    if (n.kind === "success") noticeTimer = setTimeout(() => { notice.hidden = true; }, 6000);
  }

  // -- inputs for deal fields ------------------------------------------------------------------
  function input(field, value) {
    const options = model.get("options") || {};
    const attrs = { name: field.name, "aria-label": field.label, dataset: { field: field.name } };
    if (field.type === "enum" || field.type === "user") {
      const choices = field.type === "user" ? (options.owners || []).map((u) => [u.id, u.name]) : field.values.map((v) => [v, v.replace(/_/g, " ")]);
      const select = h("select", attrs, field.required ? null : h("option", { value: "" }, "—"), choices.map(([v, label]) => h("option", { value: v }, label)));
      select.value = value ?? "";
      return select;
    }
    if (field.name === "description") return h("textarea", { ...attrs, rows: 3, value: value ?? "" });
    const type = { money: "number", number: "number", integer: "number", date: "date" }[field.type] || "text";
    return h("input", { ...attrs, type, step: field.type === "money" ? "0.01" : undefined, min: field.type === "money" ? "0" : undefined, value: value ?? "" });
  }

  function read(form) {
    const values = {};
    for (const el of form.querySelectorAll("[data-field]")) values[el.dataset.field] = el.value === "" ? null : el.value;
    return values;
  }

  // -- the close-reason / missing-fields form ------------------------------------------------
  function drawPrompt() {
    const p = model.get("prompt") || {};
    if (!p.deal_id) { prompt.hidden = true; prompt.replaceChildren(); return; }
    prompt.hidden = false;
    const fields = p.fields.map((f) => h("label", { class: "pb-field" }, h("span", {}, f.label), input(f, null)));
    prompt.onsubmit = (e) => {
      e.preventDefault();
      request("move", { deal_id: p.deal_id, stage_id: p.stage_id, version: p.version, changes: read(prompt) });
    };
    prompt.replaceChildren(h("p", { class: "pb-prompt-text" }, p.message), h("div", { class: "pb-prompt-fields" }, fields),
      h("button", { type: "submit", class: "pb-primary" }, `Move to ${p.stage}`),
      h("button", { type: "button", onclick: () => request("cancel_prompt") }, "Cancel"));
    const first = prompt.querySelector("[data-field]");
    if (first) first.focus();
  }

  // -- columns and cards -----------------------------------------------------------------------
  function columnOf(id) {
    return (model.get("columns") || []).findIndex((c) => c.cards.some((card) => card.id === id));
  }

  function cardOf(id) {
    for (const c of model.get("columns") || []) for (const card of c.cards) if (card.id === id) return card;
    return null;
  }

  function move(id, stageId) {
    const card = cardOf(id);
    if (!card || card.stage_id === stageId) return;
    const target = board.querySelector(`.pb-column[data-stage="${stageId}"] .pb-cards`);
    const element = board.querySelector(`.pb-card[data-id="${id}"]`);
    if (target && element) { element.classList.add("pending"); target.prepend(element); element.focus(); }
    request("move", { deal_id: id, stage_id: stageId, version: card.version });
  }

  function drawCard(card, stage) {
    const flags = [card.overdue ? h("span", { class: "pb-flag overdue" }, "overdue") : null,
      card.stale ? h("span", { class: "pb-flag stale" }, "stale") : null];
    const element = h("article", {
      class: `pb-card${card.overdue ? " overdue" : ""}${card.stale ? " stale" : ""}`, draggable: "true", tabindex: "0", role: "listitem",
      dataset: { id: card.id, stage: stage.id }, "aria-label": `${card.title}, ${stage.name}`,
      ondragstart: (e) => {
        dragging = card.id;
        e.dataTransfer.setData("text/plain", card.id);
        e.dataTransfer.effectAllowed = "move";
        element.classList.add("dragging");
      },
      ondragend: () => {
        dragging = null;
        element.classList.remove("dragging");
        if (deferred) drawColumns();
      },
      onclick: () => request("open", { deal_id: card.id }),
      onkeydown: (e) => {
        const columns = model.get("columns");
        const at = columns.findIndex((c) => c.id === stage.id);
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          e.preventDefault();
          const next = columns[at + (e.key === "ArrowRight" ? 1 : -1)];
          if (next) move(card.id, next.id);
        } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          const sibling = e.key === "ArrowDown" ? element.nextElementSibling : element.previousElementSibling;
          if (sibling) sibling.focus();
        } else if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          request("open", { deal_id: card.id });
        }
      },
    },
    h("div", { class: "pb-card-title" }, card.title),
    h("div", { class: "pb-card-company" }, card.company || ""),
    h("div", { class: "pb-card-row" }, h("span", { class: "pb-card-value" }, money(card.value, card.currency)), h("span", { class: "pb-card-owner" }, card.owner || "unassigned")),
    h("div", { class: "pb-card-row pb-card-meta" },
      h("span", { class: "pb-card-close", title: "Expected close date" }, card.expected_close_date ? `closes ${when(card.expected_close_date)}` : "no close date"),
      h("span", { class: "pb-card-age", title: "Days in this stage" }, `${card.days_in_stage} d in stage`),
      h("a", { class: "pb-card-open", href: recordUrl((model.get("options") || {}).record_app, "deals", card.id),
        draggable: "false", title: "Open the deal's page", "aria-label": `Open ${card.title}`,
        onclick: (e) => e.stopPropagation(), onkeydown: (e) => e.stopPropagation() }, "Open ↗")),
    flags.some(Boolean) ? h("div", { class: "pb-flags" }, flags) : null);
    return element;
  }

  function drawColumns() {
    if (dragging) { deferred = true; return; }
    deferred = false;
    const focused = root.querySelector(".pb-card:focus");
    const focusId = focused ? focused.dataset.id : null;
    const currency = (model.get("options") || {}).currency || "USD";  // totals are in the reporting currency
    const columns = (model.get("columns") || []).map((stage) => {
      const list = h("div", { class: "pb-cards", role: "list" }, stage.cards.map((card) => drawCard(card, stage)));
      const column = h("section", {
        class: "pb-column", dataset: { stage: stage.id }, "aria-label": stage.name, style: `--stage-colour: ${stage.colour || "#9e9e9e"}`,
        ondragover: (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; column.classList.add("drop-target"); },
        ondragleave: (e) => { if (!column.contains(e.relatedTarget)) column.classList.remove("drop-target"); },
        ondrop: (e) => {
          e.preventDefault();
          column.classList.remove("drop-target");
          const id = e.dataTransfer.getData("text/plain") || dragging;
          dragging = null;
          if (id) move(id, stage.id);
        },
      },
      h("header", { class: "pb-column-header" },
        h("div", { class: "pb-column-title" }, h("span", { class: "pb-column-name" }, stage.name), h("span", { class: "pb-count", title: "Deals" }, whole.format(stage.count))),
        h("div", { class: "pb-totals" },
          h("span", { class: "pb-total", title: `Total value in ${currency}` }, money(stage.value, currency)),
          h("span", { class: "pb-weighted", title: `Weighted value in ${currency}` }, ` · weighted ${money(stage.weighted, currency)}`)),
        stage.missing ? h("div", { class: "pb-missing", title: "Deals in a currency without an exchange rate are left out of the totals" }, `⚠ ${stage.missing}`) : null),
      list,
      stage.more > 0 ? h("button", { type: "button", class: "pb-more", onclick: () => request("more", { stage_id: stage.id }) }, `Show more (${whole.format(stage.more)} left)`) : null);
      return column;
    });
    board.replaceChildren(...columns);
    if (focusId) {
      const again = board.querySelector(`.pb-card[data-id="${focusId}"]`);
      if (again) again.focus();
    }
  }

  // -- side panel ------------------------------------------------------------------------------
  function drawPanel() {
    const p = model.get("panel") || {};
    if (!p.id) { panel.hidden = true; panel.replaceChildren(); panelShown = null; return; }
    const options = model.get("options") || {};
    const key = `${p.id}@${p.version}`;
    const dirty = panel.querySelector("form.pb-deal-form.dirty");
    if (panelShown === key || (dirty && panelShown && panelShown.startsWith(p.id + "@"))) {
      // Same deal: keep what the user is typing; refresh the timeline and messages only.
      const timeline = panel.querySelector(".pb-timeline");
      if (timeline) timeline.replaceChildren(...drawTimeline(p));
      const message = panel.querySelector(".pb-panel-message");
      if (message) message.textContent = p.message || (dirty && panelShown !== key ? "Someone else changed this deal; saving will be refused. Reopen it to see the fresh values." : "");
      for (const el of panel.querySelectorAll(".pb-error")) el.textContent = (p.errors || {})[el.dataset.for] || "";
      return;
    }
    panelShown = key;
    panel.hidden = false;
    const fields = (options.fields || []).map((f) => h("label", { class: "pb-field" }, h("span", {}, f.label), input(f, p.values[f.name]),
      h("span", { class: "pb-error", dataset: { for: f.name } }, (p.errors || {})[f.name] || "")));
    const form = h("form", {
      class: "pb-deal-form", oninput: () => form.classList.add("dirty"),
      onsubmit: (e) => {
        e.preventDefault();
        const values = read(form);
        const changes = {};
        for (const [k, v] of Object.entries(values)) if ((p.values[k] ?? null) !== v && String(p.values[k] ?? "") !== String(v ?? "")) changes[k] = v;
        form.classList.remove("dirty");
        request("save", { deal_id: p.id, version: p.version, changes });
      },
    }, fields, h("button", { type: "submit", class: "pb-primary" }, "Save"));
    const stageSelect = h("select", { "aria-label": "Stage", class: "pb-stage-select" }, (model.get("columns") || []).map((c) => h("option", { value: c.id }, c.name)));
    stageSelect.value = p.stage_id;
    const kind = h("select", { name: "kind", "aria-label": "Activity type" }, (options.activity_kinds || []).map((k) => h("option", { value: k.id }, k.label)));
    const subject = h("input", { name: "subject", placeholder: "Subject", "aria-label": "Subject", required: true });
    const description = h("textarea", { name: "description", rows: 2, placeholder: "Notes", "aria-label": "Notes" });
    const due = h("input", { name: "due", type: "date", "aria-label": "Due date", title: "Due date (tasks)" });
    const logForm = h("form", {
      class: "pb-log-form",
      onsubmit: (e) => {
        e.preventDefault();
        request("log", { deal_id: p.id, kind: kind.value, subject: subject.value, description: description.value || null, due: due.value || null });
      },
    }, h("div", { class: "pb-log-row" }, kind, subject, due), description, h("button", { type: "submit" }, "Log"));
    panel.hidden = false;
    panel.replaceChildren(
      h("header", { class: "pb-panel-header" },
        h("h3", {}, p.values.title),
        h("a", { class: "pb-panel-open", href: recordUrl(options.record_app, "deals", p.id), title: "The deal's page: every field, people, timeline" }, "Open page ↗"),
        h("button", { type: "button", class: "pb-close", "aria-label": "Close", onclick: () => request("close_panel") }, "×")),
      h("div", { class: "pb-facts" },
        [["Company", p.company], ["Contact", p.contact], ["Owner", p.owner], ["Weighted", money(p.weighted_value, p.values.currency)]]
          .map(([label, value]) => h("div", { class: "pb-fact" }, h("span", { class: "pb-fact-label" }, label), h("span", {}, value || "—")))),
      h("div", { class: "pb-panel-move" }, h("label", {}, "Stage ", stageSelect),
        h("button", { type: "button", onclick: () => request("move", { deal_id: p.id, stage_id: stageSelect.value, version: p.version }) }, "Move")),
      h("p", { class: "pb-panel-message", role: "alert" }, p.message || ""),
      form,
      h("h4", {}, "Log activity"), logForm,
      h("h4", {}, "Timeline"), h("ol", { class: "pb-timeline" }, drawTimeline(p)));
  }

  function drawTimeline(p) {
    if (!p.activities || !p.activities.length) return [h("li", { class: "pb-empty" }, "No activities yet.")];
    return p.activities.map((a) => h("li", { class: `pb-activity pb-activity-${a.type}` },
      h("span", { class: "pb-activity-type" }, a.type.replace(/_/g, " ")),
      h("span", { class: "pb-activity-subject" }, a.subject),
      h("span", { class: "pb-activity-when" }, when(a.completed_at || a.due_at || a.created_at)),
      h("span", { class: "pb-activity-who" }, [a.owner, a.status].filter(Boolean).join(" · ")),
      a.description ? h("div", { class: "pb-activity-notes" }, a.description) : null));
  }

  drawConnection();
  drawToolbar();
  drawNotice();
  drawPrompt();
  drawColumns();
  drawPanel();
  const listeners = [
    ["change:columns", () => { drawColumns(); if (model.get("panel")?.id) drawPanelStage(); }],
    ["change:filters", drawToolbar], ["change:options", drawToolbar], ["change:sort", drawToolbar], ["change:connection", drawConnection],
    ["change:notice", drawNotice], ["change:prompt", drawPrompt], ["change:panel", drawPanel],
  ];
  function drawPanelStage() {
    const select = panel.querySelector(".pb-stage-select");
    const p = model.get("panel");
    if (select && p) select.value = p.stage_id;
  }
  for (const [name, fn] of listeners) model.on(name, fn);
  return () => {
    for (const [name, fn] of listeners) model.off(name, fn);
    model.off("msg:custom", onMessage);
    clearTimeout(noticeTimer);
  };
}

export default { render };
