// The catalog in the check UI: the facts of each dataset the service checks (from /api/v1/datasets),
// and the collections that were never disclosed (from /api/v1/catalog), which cannot be checked but
// which a person who read about them in the news looks for first.
//
// Built with the helpers check-ui.js passes in (`kit`), so it works in the page and the widget alike.

export const CATALOG_STRINGS = {
  catalogFactsSummary: "What is known about this dataset",
  catalogYear: "Year",
  catalogImages: "Images",
  catalogIdentities: "People",
  catalogPhotoSource: "Where the photos came from",
  catalogDistribution: "How it is handed out",
  catalogTerms: "Terms",
  catalogStatus: "Status",
  catalogMaintainer: "Who holds it",
  catalogRemoval: "Removal",
  catalogRemovalNone: "No way to ask for removal is known.",
  catalogSources: "Sources",

  undisclosedHeading: "Collections that cannot be checked",
  undisclosedIntro:
    "These collections of face photos were never published, so no one can check a photo against them. Here " +
    "is what is known about each, and what a person can do.",
  undisclosedKnown: "What is known",
  undisclosedRoute: "What you can do",
  undisclosedPointer: "Here about {names}? They were never disclosed, so they cannot be checked.",
  undisclosedPointerButton: "Read what is known",
};

/** The catalog entry /api/v1/datasets gives a dataset (an object), or null for one added without. */
export function catalogEntry(dataset) {
  const entry = dataset?.catalog;
  return entry && typeof entry === "object" ? entry : null;
}

/** One shared, memoised GET /api/v1/catalog; a failure is forgotten so that a later call tries again. */
export function catalogLoader(kit) {
  let pending = null;
  return function loadCatalog() {
    pending ??= kit
      .api("/api/v1/catalog")
      .then(async (response) => {
        const body = await kit.readJson(response);
        if (!response.ok || !Array.isArray(body?.datasets)) throw new Error(body?.error?.message ?? "");
        return body;
      })
      .catch((error) => {
        pending = null;
        throw error;
      });
    return pending;
  };
}

function sourceList(kit, sources) {
  const links = (sources ?? []).map((source) => [kit.webUrl(source?.url), source?.title || source?.url]);
  const shown = links.filter(([url]) => url);
  if (!shown.length) return null;
  return kit.h(
    "ul",
    { class: "pc-source-list" },
    ...shown.map(([url, title]) => kit.h("li", {}, kit.outLink(url, title))),
  );
}

function factList(kit, pairs) {
  const { h } = kit;
  const shown = pairs.filter(([, value]) => value != null && value !== "");
  if (!shown.length) return null;
  return h(
    "dl",
    { class: "pc-facts" },
    ...shown.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
  );
}

/** The catalog facts of an indexed dataset, folded away under a summary; null without an entry. */
export function catalogFacts(kit, dataset) {
  const entry = catalogEntry(dataset);
  if (!entry) return null;
  const { h, t, numbers, webUrl } = kit;
  const count = (value) => (Number.isFinite(value) ? numbers.format(value) : null);
  const status = entry.status
    ? [t(`nextStatus_${entry.status}`), entry.status_note].filter(Boolean).join(". ")
    : null;
  const removal = entry.removal ?? {};
  const removalUrl = webUrl(removal.url);
  const removalText = removal.summary || (removal.steps?.length ? removal.steps.join(" ") : "");
  return h(
    "details",
    { class: "pc-catalog-facts" },
    h("summary", { text: t("catalogFactsSummary") }),
    factList(kit, [
      [t("catalogYear"), entry.year != null ? String(entry.year) : null],
      [t("catalogImages"), count(entry.images)],
      [t("catalogIdentities"), count(entry.identities)],
      [t("catalogPhotoSource"), entry.photo_source],
      [t("catalogDistribution"), entry.distribution],
      [t("catalogTerms"), entry.terms],
      [t("catalogStatus"), status],
      [t("catalogMaintainer"), entry.maintainer],
      [
        t("catalogRemoval"),
        removalText || removalUrl
          ? h("span", {}, removalText, removalUrl ? " " : null, removalUrl ? kit.outLink(removalUrl, removalUrl) : null)
          : t("catalogRemovalNone"),
      ],
    ]),
    entry.sources?.length ? h("p", { class: "pc-sources-label", text: t("catalogSources") }) : null,
    sourceList(kit, entry.sources),
  );
}

/**
 * The never-disclosed collections: a section for the datasets area, and a pointer to it for the top
 * of the UI. Both stay hidden until `show(catalog)` has collections to show.
 */
export function createUndisclosed(kit, { id }) {
  const { h, t, heading } = kit;
  const title = heading(0, { id: `${id}-heading`, class: "pc-heading", tabindex: "-1" }, t("undisclosedHeading"));
  const list = h("ul", { class: "pc-undisclosed-list" });
  const element = h(
    "section",
    { class: "pc-undisclosed", hidden: true, "aria-labelledby": `${id}-heading` },
    title,
    h("p", { class: "pc-undisclosed-intro", text: t("undisclosedIntro") }),
    list,
  );
  const pointerText = h("span");
  const pointer = h(
    "p",
    { class: "pc-undisclosed-pointer", hidden: true },
    pointerText,
    " ",
    // A button rather than a #fragment link: inside a shadow root, a fragment finds nothing.
    h("button", {
      type: "button",
      class: "pc-link-button",
      text: t("undisclosedPointerButton"),
      onclick: () => {
        title.scrollIntoView({ block: "start" });
        title.focus({ preventScroll: true });
      },
    }),
  );

  function show(catalog) {
    const collections = catalog?.undisclosed ?? [];
    if (!collections.length) return;
    list.replaceChildren(
      ...collections.map((collection) =>
        h(
          "li",
          { class: "pc-collection", "data-collection": collection.name },
          heading(1, { class: "pc-collection-title" }, collection.title || collection.name),
          collection.year || collection.maintainer
            ? h("p", { class: "pc-meta", text: [collection.maintainer, collection.year].filter(Boolean).join(" · ") })
            : null,
          heading(2, { class: "pc-next-subtitle" }, t("undisclosedKnown")),
          h("p", { class: "pc-collection-known", text: collection.known || "" }),
          heading(2, { class: "pc-next-subtitle" }, t("undisclosedRoute")),
          h("p", { class: "pc-collection-route", text: collection.route || "" }),
          sourceList(kit, collection.sources),
        ),
      ),
    );
    const names = collections.map((collection) => collection.title || collection.name);
    const joined = new Intl.ListFormat(kit.strings.locale, { type: "disjunction" }).format(names);
    pointerText.textContent = t("undisclosedPointer", { names: joined });
    pointer.hidden = false;
    element.hidden = false;
  }

  return { element, pointer, show };
}
