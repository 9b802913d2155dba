// The /next-steps page: the guidance of next-steps.js for one dataset, chosen from a list or named in
// the address's fragment (/next-steps#ffhq), which is what the bulk report links to. The fragment never
// reaches the server, so its log cannot tell which dataset a visitor looked at.

import { CATALOG_STRINGS, catalogEntry, catalogLoader, createUndisclosed } from "./catalog-view.js";
import { DEFAULT_STRINGS, createKit } from "./check-ui.js";
import { createNextSteps } from "./next-steps.js";

const PAGE_STRINGS = {
  ...DEFAULT_STRINGS,
  ...CATALOG_STRINGS,
  nextHeading: "For this dataset",
  nextIntro:
    "Who holds it, whether it is still handed out, how to ask for your photos to be removed, and the rights " +
    "that may apply where you live.",
  pageDatasetLabel: "Which dataset?",
  pageDatasetChoose: "Choose a dataset",
  pageIndexed: "Datasets this service checks",
  pageCatalog: "Other disclosed datasets",
  pageFailed: "The datasets could not be loaded. Try again in a moment.",
};

async function main(root) {
  const kit = {
    ...createKit(document, PAGE_STRINGS),
    api: (path, init = {}) =>
      fetch(path, { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer", ...init }),
  };
  const { h, t } = kit;
  kit.loadCatalog = catalogLoader(kit);
  const nextSteps = createNextSteps(kit, { id: "next" });
  const undisclosed = createUndisclosed(kit, { id: "undisclosed" });
  const select = h("select", { id: "dataset", class: "pc-select" });
  const container = h(
    "div",
    { class: "pc-check" },
    h(
      "div",
      { class: "pc-region" },
      h("label", { for: "dataset", class: "pc-region-label", text: t("pageDatasetLabel") }),
      select,
    ),
    nextSteps.element,
    undisclosed.element,
  );

  let datasets;
  let catalog;
  try {
    const answers = await Promise.all([kit.api("/api/v1/datasets"), kit.loadCatalog()]);
    datasets = (await kit.readJson(answers[0]))?.datasets ?? [];
    catalog = answers[1];
  } catch {
    root.replaceChildren(h("p", { role: "alert", text: t("pageFailed") }));
    return;
  }
  // The datasets this service indexed (by their names here), then the rest of the catalog.
  const choices = new Map();
  for (const dataset of datasets) choices.set(dataset.name, { dataset, entry: catalogEntry(dataset) });
  const covered = new Set(datasets.map((dataset) => catalogEntry(dataset)?.name).filter(Boolean));
  for (const entry of catalog.datasets) {
    if (!covered.has(entry.name) && !choices.has(entry.name)) {
      choices.set(entry.name, { dataset: { name: entry.name, title: entry.title }, entry });
    }
  }
  const option = ([name, choice]) => h("option", { value: name, text: choice.entry?.title || choice.dataset.title });
  const all = [...choices];
  select.append(
    h("option", { value: "", text: t("pageDatasetChoose") }),
    h("optgroup", { label: t("pageIndexed") }, ...all.slice(0, datasets.length).map(option)),
    h("optgroup", { label: t("pageCatalog") }, ...all.slice(datasets.length).map(option)),
  );

  function show() {
    const choice = choices.get(select.value);
    if (!choice) {
      nextSteps.clear();
      return;
    }
    nextSteps.show([{ ...choice, finding: { kind: "told" }, checkedAt: new Date() }], catalog);
  }
  function fromFragment() {
    const name = decodeURIComponent(location.hash.slice(1));
    if (choices.has(name)) select.value = name;
    show();
  }
  select.addEventListener("change", () => {
    // The fragment follows the choice, so the address can be shared; replaceState keeps history short.
    history.replaceState(null, "", select.value ? `#${encodeURIComponent(select.value)}` : location.pathname);
    show();
  });
  window.addEventListener("hashchange", fromFragment);
  root.replaceChildren(container);
  undisclosed.show(catalog);
  fromFragment();
}

const root = document.querySelector("[data-next-steps]");
if (root) main(root);
