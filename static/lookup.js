// "Search by Flickr account": most disclosed face datasets were taken from Flickr, so a person who
// posted there can ask by username, account id (NSID, such as 12345678@N00) or a photo's link which
// of that account's photos each dataset lists (GET /api/v1/lookup). And the tabs that switch between
// this search and the photo check.
//
// Built with the helpers check-ui.js passes in (`kit`), so it works in the page and the widget alike.

import { catalogEntry } from "./catalog-view.js";
import { createNextSteps } from "./next-steps.js";

export const LOOKUP_STRINGS = {
  tabsLabel: "Ways to check",
  checkTab: "Check a photo",
  lookupTab: "Search by Flickr account",

  lookupIntro:
    "Many of these datasets were made from photos posted on Flickr. If you posted photos there, search for " +
    "your account: the answer says which of its photos each dataset lists.",
  lookupLabel: "Your Flickr username, account id (such as 12345678@N00) or a link to one of your photos",
  lookupButton: "Search",
  lookupPrivacy:
    "Your search is answered in memory and then forgotten: nothing is stored or logged. The answer lists only " +
    "that account's own photos, never anything about other people.",
  lookupEmpty: "Type a Flickr username, an account id or a link to a photo first.",
  lookupSearching: "Searching…",
  lookupDone: "Done: the results for {count} datasets are below.",
  lookupDoneOne: "Done: the result for {count} dataset is below.",
  lookupFailed: "The search could not be made.",
  lookupResultsHeading: "Results",
  lookupQuery_nsid: "For the Flickr account {value}",
  lookupQuery_username: "For the Flickr username {value}",
  lookupQuery_photo: "For the Flickr photo {value}",
  lookupFound: "Found",
  lookupPhotos: "{count} photos from this account",
  lookupPhotosOne: "{count} photo from this account",
  lookupPhotoIn: "This photo is in this dataset",
  lookupNotIn: "Not in this dataset",
  lookupCannot_username: "Cannot be searched by username",
  lookupCannot_nsid: "Cannot be searched by account id",
  lookupCannot_photo: "Cannot be searched by photo",
  lookupWhy_username:
    "A username cannot be searched in this dataset: its metadata names accounts by their id, not their " +
    "username. Search with your account id (such as 12345678@N00) or a link to one of your photos instead.",
  lookupWhy_nsid:
    "An account id cannot be searched in this dataset: its metadata does not name accounts by their id. " +
    "Search with your username or a link to one of your photos instead.",
  lookupWhy_photo: "A photo cannot be searched in this dataset: its metadata does not name Flickr photos.",
  lookupListed: "The first {shown} are listed.",
  lookupPhoto: "Photo {id} on Flickr",
};

/**
 * Tabs over panels that already exist (ARIA's tabs pattern: one tab stop, arrow keys move between
 * tabs, the chosen tab's panel shows). tabs: [{ key, label, panel }]. Returns { element, select(key) }.
 */
export function createTabs(kit, { id, label, tabs }) {
  const { h } = kit;
  const buttons = tabs.map((tab) =>
    h("button", {
      type: "button",
      role: "tab",
      id: `${id}-tab-${tab.key}`,
      class: "pc-tab",
      "data-tab": tab.key,
      "aria-controls": `${id}-panel-${tab.key}`,
      text: tab.label,
      onclick: () => select(tab.key),
    }),
  );
  for (const tab of tabs) {
    tab.panel.id = `${id}-panel-${tab.key}`;
    tab.panel.setAttribute("role", "tabpanel");
    tab.panel.setAttribute("aria-labelledby", `${id}-tab-${tab.key}`);
  }
  const element = h("div", { class: "pc-tabs", role: "tablist", "aria-label": label }, ...buttons);
  element.addEventListener("keydown", (event) => {
    const current = buttons.indexOf(event.target);
    if (current < 0) return;
    const next = {
      ArrowRight: (current + 1) % buttons.length,
      ArrowLeft: (current - 1 + buttons.length) % buttons.length,
      Home: 0,
      End: buttons.length - 1,
    }[event.key];
    if (next == null) return;
    event.preventDefault();
    select(tabs[next].key);
    buttons[next].focus();
  });

  function select(key) {
    tabs.forEach((tab, number) => {
      const chosen = tab.key === key;
      buttons[number].setAttribute("aria-selected", String(chosen));
      buttons[number].tabIndex = chosen ? 0 : -1;
      tab.panel.hidden = !chosen;
    });
  }

  select(tabs[0].key);
  return { element, select };
}

/** The search panel. kit.loadDatasets() and kit.loadCatalog() give the facts its next steps need. */
export function createLookup(kit, { id }) {
  const { h, t, tc, heading, outLink, webUrl, numbers } = kit;
  const inputId = `${id}-query`;
  const input = h("input", {
    id: inputId,
    type: "text",
    class: "pc-input pc-lookup-input",
    name: "flickr",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    "aria-describedby": `${id}-privacy`,
  });
  const button = h("button", { type: "submit", class: "pc-button pc-button-primary", text: t("lookupButton") });
  const form = h(
    "form",
    { class: "pc-lookup-form", role: "search" },
    h("label", { for: inputId, class: "pc-lookup-label", text: t("lookupLabel") }),
    h("div", { class: "pc-lookup-row" }, input, button),
  );
  const status = h("p", { class: "pc-lookup-status", role: "status", "aria-live": "polite" });
  const alertMessage = h("p", { class: "pc-lookup-alert-message" });
  const alert = h("div", { class: "pc-lookup-alert", role: "alert", hidden: true }, alertMessage);
  const resultsQuery = h("p", { class: "pc-lookup-query" });
  const resultList = h("ul", { class: "pc-lookup-list" });
  const results = h(
    "section",
    { class: "pc-lookup-results", hidden: true, "aria-labelledby": `${id}-results` },
    heading(0, { id: `${id}-results`, class: "pc-heading" }, t("lookupResultsHeading")),
    resultsQuery,
    resultList,
  );
  const nextSteps = createNextSteps(kit, { id: `${id}-next` });
  const element = h(
    "div",
    { class: "pc-lookup" },
    h("p", { class: "pc-lookup-intro", text: t("lookupIntro") }),
    form,
    h("p", { id: `${id}-privacy`, class: "pc-lookup-privacy", text: t("lookupPrivacy") }),
    status,
    alert,
    results,
    nextSteps.element,
  );

  let request = null;

  function fail(message) {
    results.hidden = true;
    resultList.replaceChildren();
    nextSteps.clear();
    alertMessage.textContent = message;
    alert.hidden = false;
  }

  async function search(value) {
    request?.abort();
    const controller = new AbortController();
    request = controller;
    alert.hidden = true;
    status.textContent = t("lookupSearching");
    element.classList.add("pc-busy");
    let response;
    let answer;
    try {
      response = await kit.api(`/api/v1/lookup?${new URLSearchParams({ flickr: value })}`, {
        signal: controller.signal,
      });
      answer = await kit.readJson(response);
    } catch {
      if (controller.signal.aborted) return;
      done();
      status.textContent = t("lookupFailed");
      fail(t("errorNetwork"));
      return;
    }
    if (controller.signal.aborted) return;
    done();
    if (!response.ok || !answer || answer.error || !Array.isArray(answer.results)) {
      status.textContent = t("lookupFailed");
      fail(answer?.error?.message ?? t("errorUnexpected", { status: response.status }));
      return;
    }
    const checkedAt = new Date();
    // The facts for the next steps; without them the search's answer still stands.
    const [info, catalog] = await Promise.all([
      kit.loadDatasets().catch(() => null),
      kit.loadCatalog().catch(() => null),
    ]);
    if (request !== null && request !== controller) return;
    render(answer, info, catalog, checkedAt);
    status.textContent = tc("lookupDone", answer.results.length);

    function done() {
      if (request === controller) request = null;
      element.classList.remove("pc-busy");
    }
  }

  function render(answer, info, catalog, checkedAt) {
    const byName = new Map((info?.datasets ?? []).map((dataset) => [dataset.name, dataset]));
    const query = answer.query ?? { kind: "nsid", value: "" };
    resultsQuery.textContent = t(`lookupQuery_${query.kind}`, { value: query.value });
    const sorted = [...answer.results].sort((a, b) => (b.photos ?? 0) - (a.photos ?? 0));
    resultList.replaceChildren(...sorted.map((result) => renderResult(result, query)));
    results.hidden = false;
    const findings = sorted
      .filter((result) => result.photos > 0)
      .map((result) => {
        const dataset = byName.get(result.dataset) ?? { name: result.dataset, title: result.title };
        return {
          dataset,
          entry: catalogEntry(dataset),
          finding: { kind: "flickr", query, photos: result.items ?? [], total: result.photos },
          checkedAt,
        };
      });
    nextSteps.show(findings, catalog);
  }

  function renderResult(result, query) {
    const found = result.photos > 0;
    // Whether the dataset's metadata holds what this kind of query needs (older answers: usernames only).
    const searchable = result.searchable ?? (query.kind !== "username" || result.username_searchable !== false);
    const cannot = !found && !searchable;
    const items = result.items ?? [];
    const outcome = found ? "found" : cannot ? "unsearchable" : "not_found";
    const words = found
      ? query.kind === "photo"
        ? t("lookupPhotoIn")
        : tc("lookupPhotos", result.photos)
      : cannot
        ? t(`lookupCannot_${query.kind}`)
        : t("lookupNotIn");
    return h(
      "li",
      {
        class: `pc-lookup-result pc-lookup-${outcome}`,
        "data-dataset": result.dataset,
        "data-lookup": outcome,
      },
      h(
        "div",
        { class: "pc-lookup-head" },
        heading(1, { class: "pc-lookup-title" }, result.title || result.dataset),
        h("span", { class: "pc-lookup-verdict", text: words }),
      ),
      cannot ? h("p", { class: "pc-lookup-cannot", text: t(`lookupWhy_${query.kind}`) }) : null,
      found && items.length
        ? h(
            "ul",
            { class: "pc-photo-links" },
            ...items.map((item) => {
              const url = webUrl(item.url);
              const text = t("lookupPhoto", { id: item.photo_id });
              return h("li", {}, url ? outLink(url, text, { class: "pc-photo-link" }) : text);
            }),
          )
        : null,
      found && items.length < result.photos
        ? h("p", { class: "pc-meta", text: t("lookupListed", { shown: numbers.format(items.length) }) })
        : null,
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      status.textContent = "";
      fail(t("lookupEmpty"));
      input.focus();
      return;
    }
    search(value);
  });

  return {
    element,
    destroy() {
      request?.abort();
      nextSteps.clear();
    },
  };
}
