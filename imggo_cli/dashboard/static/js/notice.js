// One line at the top of the page for what went wrong (never the key).

import { byId, show } from "./dom.js";

export function notify(message) {
  const notice = byId("notice");
  notice.textContent = message;
  show(notice);
}

export function clearNotice() {
  show(byId("notice"), false);
}
