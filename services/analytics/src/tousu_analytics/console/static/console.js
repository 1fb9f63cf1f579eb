// Tousu ops console: the live board follows the server's stream; nothing else needs script.
"use strict";

(function () {
  const root = document.getElementById("board");
  if (!root) return;
  const words = JSON.parse(root.dataset.words);
  let known = null; // breached clocks seen so far (null until the first snapshot)

  function cell(tag, text, cls) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }

  function emptyRow(columns) {
    const tr = document.createElement("tr");
    const td = cell("td", words.nothing);
    td.colSpan = columns;
    tr.appendChild(td);
    return tr;
  }

  function countsTable(rows, key, heading) {
    const table = document.createElement("table");
    table.className = "counts";
    const head = document.createElement("tr");
    [heading, words.running, words.at_risk, words.breached, words.paused, words.escalated_word]
      .forEach((text, i) => head.appendChild(cell("th", text, i ? "n" : "")));
    const thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    const body = document.createElement("tbody");
    if (!rows.length) body.appendChild(emptyRow(6));
    rows.forEach((row) => {
      const tr = document.createElement("tr");
      tr.appendChild(cell("td", row.label));
      tr.appendChild(cell("td", row.running, "n"));
      tr.appendChild(cell("td", row.at_risk, "n"));
      tr.appendChild(cell("td", row.breached, "n bad"));
      tr.appendChild(cell("td", row.paused, "n"));
      tr.appendChild(cell("td", row.escalated, "n"));
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  function clockRow(row, fresh) {
    const tr = document.createElement("tr");
    const key = row.complaint_id + ":" + row.milestone;
    tr.className = "state-" + row.state + (fresh.has(key) ? " flash" : "");
    tr.dataset.key = key;
    const status = document.createElement("td");
    status.appendChild(cell("span", row.state_label, "pill " + row.state));
    if (row.escalated) {
      status.appendChild(document.createTextNode(" "));
      status.appendChild(cell("span", words.escalated_word, "pill escalated"));
    }
    tr.appendChild(status);
    const link = document.createElement("td");
    const a = cell("a", row.complaint_id.slice(0, 8));
    a.href = "/console/cases/" + row.complaint_id;
    link.appendChild(a);
    tr.appendChild(link);
    tr.appendChild(cell("td", row.department || "—"));
    tr.appendChild(cell("td", row.level_label || "—"));
    tr.appendChild(cell("td", row.category_label || "—"));
    tr.appendChild(cell("td", row.milestone_label));
    tr.appendChild(cell("td", row.minutes_left === null ? "—" : String(row.minutes_left), "n"));
    tr.appendChild(cell("td", row.due_local || "—", "due"));
    return tr;
  }

  function render(data) {
    const breached = new Set(data.breached_ids);
    const fresh = new Set(known === null ? [] : [...breached].filter((k) => !known.has(k)));
    known = breached;
    ["breached", "at_risk", "escalated", "paused", "running"].forEach((state) => {
      const el = document.getElementById("total-" + state);
      if (el) el.textContent = data.totals[state];
    });
    document.getElementById("per-department").replaceChildren(
      countsTable(data.per_department, "department", words.department));
    document.getElementById("per-level").replaceChildren(
      countsTable(data.per_level, "level", words.level));
    const body = document.getElementById("clock-rows");
    const rows = data.rows.map((row) => clockRow(row, fresh));
    if (!rows.length) rows.push(emptyRow(8));
    body.replaceChildren(...rows);
    if (fresh.size) {
      const banner = document.getElementById("breach-banner");
      document.getElementById("breach-list").textContent =
        [...fresh].map((k) => k.slice(0, 8) + " " + k.split(":")[1]).join(", ");
      banner.hidden = false;
      const tile = document.querySelector('.tile[data-state="breached"]');
      tile.classList.remove("flash");
      void tile.offsetWidth; // restart the animation
      tile.classList.add("flash");
    }
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    root.dataset.version = String(Number(root.dataset.version || 0) + 1);
  }

  const live = document.getElementById("live");
  const source = new EventSource(root.dataset.stream);
  source.addEventListener("board", (event) => {
    live.classList.remove("down");
    live.title = words.live;
    render(JSON.parse(event.data));
  });
  source.addEventListener("signed_out", () => {
    source.close();
    window.location.assign("/console/login?expired=1&next=" + encodeURIComponent(location.pathname));
  });
  source.onerror = () => {
    live.classList.add("down");
    live.title = words.reconnecting;
  };
})();
