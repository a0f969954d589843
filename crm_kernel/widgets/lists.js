// TaskList and RecordList front end: an anywidget ES module, no build step, no CDN.
// Traits: items [{id, title, href, meta, badge, version}], empty (text when there are none),
// checkable (TaskList: a tick per row). A tick sends {type: "complete", id, version} to Python,
// which completes the activity and sends the new items; until then the row shows as done.
// error (TaskList): why the latest tick was refused. Text is only ever set as textContent.

function render({ model, el }) {
  const list = document.createElement("ul");
  list.className = "crm-list";
  const error = document.createElement("div");
  error.className = "crm-list-error";
  el.append(error, list);

  const row = (item) => {
    const li = document.createElement("li");
    li.className = "crm-list-row";
    li.dataset.id = item.id;
    if (item.badge) li.dataset.badge = item.badge;
    if (model.get("checkable")) {
      const tick = document.createElement("input");
      tick.type = "checkbox";
      tick.className = "crm-list-tick";
      tick.setAttribute("aria-label", `Complete ${item.title}`);
      tick.addEventListener("change", () => {
        if (!tick.checked) return;
        tick.disabled = true;
        li.classList.add("crm-list-done");
        model.send({ type: "complete", id: item.id, version: item.version });
      });
      li.append(tick);
    }
    const body = document.createElement("div");
    body.className = "crm-list-body";
    const title = document.createElement(item.href ? "a" : "span");
    title.className = "crm-list-title";
    if (item.href) title.href = item.href;
    title.textContent = item.title;
    body.append(title);
    if (item.badge) {
      const badge = document.createElement("span");
      badge.className = `crm-list-badge crm-list-badge-${item.badge}`;
      badge.textContent = item.badge;
      body.append(" ", badge);
    }
    if (item.meta) {
      const meta = document.createElement("div");
      meta.className = "crm-list-meta";
      meta.textContent = item.meta;
      body.append(meta);
    }
    li.append(body);
    return li;
  };

  const draw = () => {
    const items = model.get("items") || [];
    list.replaceChildren(...items.map(row));
    if (!items.length) {
      const none = document.createElement("li");
      none.className = "crm-list-empty";
      none.textContent = model.get("empty") || "Nothing here";
      list.append(none);
    }
  };
  const problem = () => {
    error.textContent = model.get("error") || "";
    error.hidden = !model.get("error");
  };
  draw();
  problem();
  model.on("change:items", draw);
  model.on("change:error", problem);
  return () => { model.off("change:items", draw); model.off("change:error", problem); };
}

export default { render };
