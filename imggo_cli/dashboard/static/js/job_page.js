// `/jobs/{id}`: one job - its image, its facts, and the manifest as a table and in
// each export format; live status until it is done.

import { getJson, getText, imageUrl, jobPath } from "./api.js";
import { bytes, byId, el, safeLink, show, statusPill, timeNode } from "./dom.js";
import { isSimulated, manifestTable } from "./manifest.js";
import { poller } from "./live.js";
import { clearNotice, notify } from "./notice.js";

const POLL_MS = 1500;
const EXTENSIONS = { json: "json", yaml: "yaml", xml: "xml", csv: "csv", text: "txt" };

function jobIdFromPath() {
  return decodeURIComponent(location.pathname.slice("/jobs/".length));
}

function describeUpload(source) {
  return `${source.filename || "upload"} (${source.content_type || "?"}, ${bytes(source.size)})`;
}

function facts(job) {
  const rows = [
    ["Status", statusPill(job.status)],
    ["Pattern", el("code", {}, job.pattern_id)],
    ["Source", job.source.kind === "url" ? safeLink(job.source.url) : describeUpload(job.source)],
    ["Created", timeNode(job.created_at)],
    ["Updated", timeNode(job.updated_at)],
    ["Completed", timeNode(job.completed_at)],
    ["Attempts", String(job.attempts)],
    ["Job id", el("code", {}, job.id)],
    ["ImgGo job", job.imggo_job_id ? el("code", {}, job.imggo_job_id) : "—"],
  ];
  if (job.idempotency_key) rows.push(["Idempotency key", el("code", {}, job.idempotency_key)]);
  if (job.batch_id) rows.push(["Batch", el("code", {}, job.batch_id)]);
  if (job.dedupe_of) {
    const earlier = el("a", { href: `/jobs/${encodeURIComponent(job.dedupe_of)}` }, job.dedupe_of);
    rows.push(["Same image as", earlier]);
  }
  if (job.content_sha256) rows.push(["SHA-256", el("code", { class: "hash" }, job.content_sha256)]);
  if (Object.keys(job.extras || {}).length) {
    rows.push(["Extras", el("code", {}, JSON.stringify(job.extras))]);
  }
  if (job.expires_at) rows.push(["Kept until", timeNode(job.expires_at)]);
  return rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]);
}

function preview(job) {
  const box = byId("job-image");
  const caption = byId("job-image-caption");
  if (job.links.image) {
    const img = el("img", { alt: job.source.filename || "the uploaded image" });
    box.replaceChildren(img);
    imageUrl(job.links.image).then(
      (url) => (img.src = url),
      (err) =>
        box.replaceChildren(el("p", { class: "muted" }, `image not available: ${err.message}`)),
    );
    caption.textContent = job.source.filename || "";
  } else if (job.source.kind === "url") {
    // Not loaded on its own: that would call the image's site from this page.
    box.replaceChildren(
      el("p", { class: "muted" }, "The image is at its URL; open it in a new tab:"),
      safeLink(job.source.url),
    );
  } else {
    box.replaceChildren(el("p", { class: "muted" }, "The image has not been uploaded yet."));
  }
}

function exportsFor(job, config) {
  const cache = new Map();
  const tabs = byId("tabs");
  const views = [["table", "Table"], ...config.formats.map((f) => [f, f.toUpperCase()])];
  const download = byId("export-download");

  async function select(view) {
    for (const tab of tabs.children)
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    show(byId("panel-table"), view === "table");
    show(byId("panel-export"), view !== "table");
    if (view === "table") return;
    const text = byId("export-text");
    text.textContent = "loading…";
    show(download, false);
    try {
      if (!cache.has(view)) {
        // `?format=json` answers the whole job view; the manifest itself is what we show.
        cache.set(
          view,
          view === "json"
            ? Promise.resolve({
                text: JSON.stringify(job.manifest, null, 2),
                type: "application/json",
              })
            : getText(jobPath(job.id, `?format=${encodeURIComponent(view)}`)),
        );
      }
      const { text: body, type } = await cache.get(view);
      text.textContent = body;
      byId("export-type").textContent = type.split(";")[0];
      if (download.href.startsWith("blob:")) URL.revokeObjectURL(download.href);
      download.href = URL.createObjectURL(new Blob([body], { type }));
      download.download = `${job.id}.${EXTENSIONS[view] || "txt"}`;
      show(download);
    } catch (err) {
      cache.delete(view);
      text.textContent = "";
      notify(`Could not load the ${view} export: ${err.message}`);
    }
  }

  tabs.replaceChildren(
    ...views.map(([view, label]) =>
      el(
        "button",
        {
          type: "button",
          role: "tab",
          class: "tab",
          "data-view": view,
          onclick: () => select(view),
        },
        label,
      ),
    ),
  );
  byId("panel-table").replaceChildren(manifestTable(job.manifest, config.marker));
  select("table");
}

export function start(config) {
  const id = jobIdFromPath();
  let shown = null;

  function render(job) {
    const changed = !shown || shown.updated_at !== job.updated_at || shown.status !== job.status;
    const first = !shown;
    shown = job;
    if (!changed) return;
    document.title = `${job.source.filename || job.id} · imggo-fn`;
    byId("job-title").textContent = job.source.filename || job.source.url || job.id;
    byId("job-status").replaceChildren(statusPill(job.status));
    byId("job-facts").replaceChildren(...facts(job));
    const simulated = isSimulated(job.manifest, config.marker);
    show(byId("job-sim-badge"), simulated);
    show(byId("job-simulated"), simulated);
    if (first) preview(job);
    const done = config.terminal.has(job.status);
    show(byId("result-pending"), !done);
    byId("result-pending").textContent = done ? "" : `Waiting for ImgGo (status ${job.status})…`;
    show(byId("job-error"), Boolean(job.error));
    byId("job-error").textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
    show(byId("result"), job.status === "succeeded");
    if (job.status === "succeeded") exportsFor(job, config);
    show(byId("job"));
  }

  const live = poller(async () => {
    render(await getJson(jobPath(id)));
    clearNotice();
    return !config.terminal.has(shown.status);
  }, POLL_MS);

  return getJson(jobPath(id)).then(
    (job) => {
      render(job);
      if (!config.terminal.has(job.status)) live.wake();
    },
    (err) => {
      if (err.status === 401) return;
      const missing = byId("job-missing");
      missing.replaceChildren(
        el("h2", {}, err.status === 404 ? "No such job" : "Could not load the job"),
        el("p", {}, err.message),
      );
      show(missing);
    },
  );
}
