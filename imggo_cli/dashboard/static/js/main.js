// Entry point: read what the server decided (data attributes of <body>), make sure
// there is a working API key, then start the page.

import { apiKey, getJson, onUnauthorized } from "./api.js";
import { byId, show, tickTimes } from "./dom.js";
import * as jobPage from "./job_page.js";
import * as jobsPage from "./jobs_page.js";
import { notify } from "./notice.js";

const TIME_TICK_MS = 15000;

function config() {
  const data = document.body.dataset;
  return {
    page: data.page,
    terminal: new Set(data.terminal.split(" ")),
    formats: data.formats.split(" ").filter(Boolean),
    marker: data.simulatedMarker,
  };
}

function askForKey(message) {
  show(byId("content"), false);
  show(byId("forget-key"), false);
  show(byId("key-gate"));
  const error = byId("key-error");
  error.textContent = message || "";
  show(error, Boolean(message));
  byId("key-input").focus();
}

function run(settings) {
  show(byId("key-gate"), false);
  show(byId("content"));
  show(byId("forget-key"));
  const page = settings.page === "job" ? jobPage : jobsPage;
  page.start(settings).catch((err) => {
    if (err.status !== 401) notify(err.message); // a refused key already shows the form
  });
}

function main() {
  const settings = config();
  let started = false;
  onUnauthorized(() => {
    askForKey(
      "The server refused the key. `imggo-fn serve` mints a new dev key each time it starts: paste the current one.",
    );
  });
  byId("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = byId("key-input");
    apiKey.set(input.value.trim());
    input.value = "";
    try {
      await getJson("/v1/jobs?limit=1"); // proves the key before anything is shown
    } catch (err) {
      if (err.status !== 401) askForKey(err.message);
      return;
    }
    if (started) {
      location.reload(); // a key replaced mid-session: start clean with the new one
      return;
    }
    started = true;
    run(settings);
  });
  byId("forget-key").addEventListener("click", () => {
    apiKey.clear();
    location.reload();
  });
  setInterval(tickTimes, TIME_TICK_MS);
  if (apiKey.get()) {
    started = true;
    run(settings);
  } else {
    askForKey();
  }
}

main();
