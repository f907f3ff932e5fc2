// Building the page from data. Every value goes in as a text node or an attribute,
// never through innerHTML: manifests, file names and URLs are untrusted.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
const STEPS = [
  [60, "second", 1],
  [3600, "minute", 60],
  [86400, "hour", 3600],
  [Infinity, "day", 86400],
];

export function ago(iso) {
  if (!iso) return "";
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const [, unit, size] = STEPS.find(([limit]) => Math.abs(seconds) < limit);
  return relative.format(Math.round(seconds / size), unit);
}

export function timeNode(iso) {
  return iso ? el("time", { datetime: iso, title: iso, "data-ago": "" }, ago(iso)) : "—";
}

/** Refresh every relative time on the page (no network involved). */
export function tickTimes() {
  for (const node of document.querySelectorAll("time[data-ago]")) {
    node.textContent = ago(node.getAttribute("datetime"));
  }
}

export function statusPill(status) {
  return el("span", { class: `status status-${status}`, "data-status": status }, status);
}

export function bytes(size) {
  if (size === null || size === undefined) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** An http(s) URL as a link that leaks nothing to its site; anything else as text. */
export function safeLink(url, text = url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return el("span", {}, text);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return el("span", {}, text);
  return el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, text);
}
