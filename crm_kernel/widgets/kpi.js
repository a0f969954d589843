// KpiCard's front end: an anywidget ES module, no build step, no CDN.
// Traits: key, label, value (the figure as text), raw (the figure as a plain number, for
// machines), detail (a second line), trend ("up" | "down" | "flat" | ""), note (what the
// figure leaves out). Text is only ever set as textContent.

const ARROWS = { up: "▲", down: "▼", flat: "■" };

function render({ model, el }) {
  const card = document.createElement("div");
  card.className = "crm-kpi";
  const label = document.createElement("div");
  label.className = "crm-kpi-label";
  const value = document.createElement("div");
  value.className = "crm-kpi-value";
  const detail = document.createElement("div");
  detail.className = "crm-kpi-detail";
  const note = document.createElement("div");
  note.className = "crm-kpi-note";
  card.append(label, value, detail, note);
  el.append(card);

  const draw = () => {
    const trend = model.get("trend") || "";
    card.dataset.kpi = model.get("key");
    card.dataset.value = model.get("raw");
    card.dataset.trend = trend;
    label.textContent = model.get("label");
    value.textContent = model.get("value");
    detail.textContent = (ARROWS[trend] ? ARROWS[trend] + " " : "") + (model.get("detail") || "");
    note.textContent = model.get("note") || "";
    note.hidden = !model.get("note");
    card.title = model.get("note") || "";
  };
  draw();
  const names = ["key", "label", "value", "raw", "detail", "trend", "note"];
  for (const name of names) model.on(`change:${name}`, draw);
  return () => { for (const name of names) model.off(`change:${name}`, draw); };
}

export default { render };
