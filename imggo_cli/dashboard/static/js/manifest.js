// A manifest (untrusted JSON, nested to any depth) as readable tables: objects become
// nested field/value tables, lists of like objects a grid, lists of scalars chips.

import { el } from "./dom.js";

const MAX_DEPTH = 8; // deeper than this is shown as JSON text rather than tables
const HEX_COLOR = /^#[0-9a-fA-F]{6}$/;

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isScalar = (v) => v === null || typeof v !== "object";

function scalar(value) {
  if (value === null) return el("span", { class: "v-null" }, "null");
  if (typeof value === "boolean") return el("span", { class: `v-bool v-${value}` }, String(value));
  if (typeof value === "number") return el("span", { class: "v-num" }, String(value));
  const text = String(value);
  if (HEX_COLOR.test(text)) {
    const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = text; // CSSOM, not a style attribute: the CSP allows it
    return el("span", { class: "v-color" }, swatch, el("code", {}, text));
  }
  return el("span", { class: "v-str" }, text);
}

function grid(rows, depth) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return el(
    "table",
    { class: "grid" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", {}, "#"),
        columns.map((c) => el("th", {}, c)),
      ),
    ),
    el(
      "tbody",
      {},
      rows.map((row, i) =>
        el(
          "tr",
          {},
          el("td", { class: "index" }, String(i)),
          columns.map((c) => el("td", {}, c in row ? value(row[c], depth + 1) : "")),
        ),
      ),
    ),
  );
}

function fields(entries, depth) {
  return el(
    "table",
    { class: depth === 0 ? "kv top" : "kv" },
    el(
      "tbody",
      {},
      entries.map(([key, v]) =>
        el("tr", {}, el("th", { scope: "row" }, key), el("td", {}, value(v, depth + 1))),
      ),
    ),
  );
}

function value(v, depth) {
  if (isScalar(v)) return scalar(v);
  if (depth > MAX_DEPTH) return el("pre", { class: "deep" }, JSON.stringify(v, null, 2));
  if (Array.isArray(v)) {
    if (v.length === 0) return el("span", { class: "v-empty" }, "empty list");
    if (v.every(isScalar)) {
      return el(
        "ul",
        { class: "chips" },
        v.map((x) => el("li", {}, scalar(x))),
      );
    }
    if (v.every((x) => isObject(x) && Object.values(x).every(isScalar))) return grid(v, depth);
    return fields(
      v.map((x, i) => [String(i), x]),
      depth,
    );
  }
  const entries = Object.entries(v);
  return entries.length ? fields(entries, depth) : el("span", { class: "v-empty" }, "empty");
}

/** The whole manifest as a table; `marker` (the simulator's flag) is left to the badge. */
export function manifestTable(manifest, marker) {
  if (!isObject(manifest)) return value(manifest, 0);
  return fields(
    Object.entries(manifest).filter(([key]) => key !== marker),
    0,
  );
}

/** Leaf values with dotted paths (`vendor.name`, `line_items.0.amount`), as the csv has. */
export function leaves(v, path = "", out = []) {
  if (isScalar(v)) {
    out.push([path, v]);
  } else if (Array.isArray(v) && v.every(isScalar)) {
    out.push([path, v.map((x) => String(x)).join(", ")]);
  } else {
    for (const [key, child] of Object.entries(v)) leaves(child, path ? `${path}.${key}` : key, out);
  }
  return out;
}

/** The first few fields of a manifest, for a list row. */
export function summary(manifest, marker, count) {
  const all = isObject(manifest) ? leaves(manifest).filter(([path]) => path !== marker) : [];
  const list = el(
    "dl",
    { class: "summary" },
    all.slice(0, count).map(([path, v]) => [el("dt", {}, path), el("dd", {}, scalar(v))]),
  );
  if (all.length > count) {
    list.append(el("dd", { class: "more-fields" }, `+${all.length - count} more`));
  }
  return list;
}

export function isSimulated(manifest, marker) {
  return isObject(manifest) && manifest[marker] === true;
}
