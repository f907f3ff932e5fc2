// `/`: the jobs, newest first, each with its image beside its extracted data; an
// upload form; live status while any shown job is still pending.

import { getJson, imageUrl, postForm } from "./api.js";
import { byId, el, safeLink, show, statusPill, timeNode } from "./dom.js";
import { isSimulated, summary } from "./manifest.js";
import { poller } from "./live.js";
import { notify, clearNotice } from "./notice.js";

const PAGE = 50;
const POLL_MS = 1500;
const REFRESH_EACH_TICK = 4; // pending jobs read one by one per tick (poll-through)
const SUMMARY_FIELDS = 4;
const PATTERN_KEY = "imggo-fn.pattern";

export function start(config) {
  const jobs = new Map(); // id -> job as the API last said
  const rows = new Map(); // id -> <tr>
  const tbody = byId("job-rows");
  let cursor = null;

  const pending = () => [...jobs.values()].filter((job) => !config.terminal.has(job.status));

  function thumb(job) {
    const cell = el("td", { class: "col-thumb" });
    const name = job.source.filename || "image";
    if (job.links.image) {
      const img = el("img", { class: "thumb", alt: name, "data-job": job.id });
      imageUrl(job.links.image).then(
        (url) => (img.src = url),
        () => img.replaceWith(el("div", { class: "thumb none" }, "no image")),
      );
      cell.append(img);
    } else if (job.source.kind === "url") {
      // Loading the user's URL here would make the browser call another site on
      // every view: show where it is and let a click open it.
      let host = job.source.url;
      try {
        host = new URL(job.source.url).host;
      } catch {}
      cell.append(
        el("div", { class: "thumb url" }, el("span", {}, "URL"), safeLink(job.source.url, host)),
      );
    } else {
      cell.append(el("div", { class: "thumb none" }, "upload pending"));
    }
    return cell;
  }

  function describe(job) {
    const title = job.source.filename || job.source.url || job.id;
    const cell = el(
      "td",
      { class: "col-job" },
      el("a", { class: "job-link", href: `/jobs/${encodeURIComponent(job.id)}` }, title),
      el(
        "div",
        { class: "meta" },
        el("span", { class: "pattern" }, job.pattern_id),
        " · ",
        el("code", {}, job.id.slice(0, 8)),
      ),
    );
    if (isSimulated(job.manifest, config.marker)) {
      cell.append(el("span", { class: "badge sim" }, "simulated"));
    }
    return cell;
  }

  function data(job) {
    if (job.status === "succeeded") {
      return el("td", { class: "col-data" }, summary(job.manifest, config.marker, SUMMARY_FIELDS));
    }
    if (job.error) {
      const why = el("span", { class: "error" }, `${job.error.code}: ${job.error.message}`);
      return el("td", { class: "col-data" }, why);
    }
    return el("td", { class: "col-data muted" }, "waiting for ImgGo…");
  }

  function cells(job) {
    return [
      describe(job),
      el("td", { class: "col-status" }, statusPill(job.status)),
      data(job),
      el("td", { class: "col-age" }, timeNode(job.created_at)),
    ];
  }

  function render(job) {
    const before = jobs.get(job.id);
    jobs.set(job.id, job);
    let row = rows.get(job.id);
    if (!row) {
      row = el("tr", { "data-job": job.id }, thumb(job), cells(job));
      rows.set(job.id, row);
    } else if (before.updated_at !== job.updated_at || before.status !== job.status) {
      // The image cell is built once, so a loaded image is never fetched again (a direct
      // upload to a cloud bucket that lands later shows its image on the next load).
      row.replaceChildren(row.firstChild, ...cells(job));
    }
    row.dataset.status = job.status;
  }

  function layout() {
    const ordered = [...jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    for (const job of ordered) tbody.append(rows.get(job.id)); // moves, never re-creates
    show(byId("empty"), jobs.size === 0);
    show(byId("more"), cursor !== null);
    show(
      byId("simulated-banner"),
      ordered.some((job) => isSimulated(job.manifest, config.marker)),
    );
    const patterns = [...new Set(ordered.map((job) => job.pattern_id))];
    byId("known-patterns").replaceChildren(...patterns.map((p) => el("option", { value: p })));
    const input = byId("upload-pattern");
    if (!input.value) input.value = sessionStorage.getItem(PATTERN_KEY) || patterns[0] || "";
  }

  async function tick() {
    const head = await getJson(`/v1/jobs?limit=${PAGE}`);
    head.items.forEach(render);
    // The listing is what the store holds; reading a pending job on its own also asks
    // ImgGo when its news is stale, so a lost webhook cannot stall the page.
    // Oldest news first: a read refreshes updated_at, so the turn passes to the others.
    const waiting = pending().sort((a, b) => a.updated_at.localeCompare(b.updated_at));
    const picked = waiting.slice(0, REFRESH_EACH_TICK);
    const fresh = await Promise.allSettled(picked.map((job) => getJson(job.links.self)));
    fresh.forEach((r) => r.status === "fulfilled" && render(r.value));
    layout();
    clearNotice();
    return pending().length > 0;
  }

  const live = poller(
    async () => {
      try {
        return await tick();
      } catch (err) {
        notify(`Could not refresh the jobs: ${err.message}`);
        throw err;
      }
    },
    POLL_MS,
    (state) => {
      byId("live").dataset.state = state;
      byId("live").textContent = state;
    },
  );

  async function load(more = false) {
    const query = more && cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page = await getJson(`/v1/jobs?limit=${PAGE}${query}`);
    page.items.forEach(render);
    if (more || cursor === null) cursor = page.next_cursor;
    layout();
    if (pending().length) live.wake();
  }

  async function upload(file, pattern) {
    const line = el(
      "li",
      { class: "uploading" },
      el("span", { class: "file" }, file.name),
      " uploading…",
    );
    byId("upload-results").prepend(line);
    const form = new FormData();
    form.append("pattern_id", pattern);
    form.append("image", file, file.name);
    try {
      const job = await postForm("/v1/jobs", form);
      render(job);
      line.replaceChildren(
        el("span", { class: "file" }, file.name),
        " submitted as ",
        el("a", { href: `/jobs/${encodeURIComponent(job.id)}` }, `job ${job.id.slice(0, 8)}`),
      );
      line.className = "ok";
    } catch (err) {
      // One refused file says why and leaves the others going.
      line.replaceChildren(
        el("span", { class: "file" }, file.name),
        " ",
        el("span", { class: "error" }, `${err.code}: ${err.message}`),
      );
      line.className = "failed";
    }
  }

  byId("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...byId("upload-file").files];
    const pattern = byId("upload-pattern").value.trim();
    sessionStorage.setItem(PATTERN_KEY, pattern);
    await Promise.all(files.map((file) => upload(file, pattern)));
    byId("upload-file").value = "";
    layout();
    live.wake();
  });
  byId("refresh").addEventListener("click", () => load().catch((err) => notify(err.message)));
  byId("more").addEventListener("click", () => load(true).catch((err) => notify(err.message)));

  return load();
}
