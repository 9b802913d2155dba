// "What you can do next": for each dataset that likely or possibly holds a photo of the person, who
// holds it, whether it is still handed out, how to ask for removal, the rights that may apply where
// the person lives, and a request letter drafted here, in the browser.
//
// Built with the helpers check-ui.js passes in (`kit`), inside the same root, so it works in the page
// and in the widget's shadow root alike. Nothing here sends a request: the region choice, the letter,
// copying and saving it all stay on this device.

import { catalogEntry } from "./catalog-view.js";
import { JURISDICTIONS, REGIONS, contactEmail, draftLetter, regionFromLanguage } from "./letter.js";

export const NEXT_STEPS_STRINGS = {
  nextHeading: "What you can do next",
  nextIntro:
    "For each dataset that may hold a photo of you: who holds it, whether it is still handed out, how to ask " +
    "for your photos to be removed, and the rights that may apply where you live.",
  nextNotAdvice:
    "This is general information, not legal advice. Whether a law applies depends on facts this page does not " +
    "know, such as where the dataset's holder is and what it does with the photos. A lawyer, a legal aid " +
    "service or your data protection authority can advise you.",
  nextRegionLabel: "Where do you live?",
  nextRegionHint: "This only picks the rights shown and the letter's wording. It is not sent anywhere.",
  nextRegion_eu: "In the EU or the EEA",
  nextRegion_uk: "In the UK",
  nextRegion_california: "In California",
  nextRegion_illinois: "In Illinois",
  nextRegion_elsewhere: "Somewhere else",
  nextRegionChanged: "The rights and letters below are now for: {region}.",

  nextRightsHeading: "Rights that may apply where you live",
  nextRightsNone:
    "This page describes the rights of people in the EU and the EEA, the UK, California and Illinois. Where " +
    "you live may give you similar rights. You can still write to a dataset's holder: many act on requests " +
    "whatever the law.",
  nextRightsUnknown: "The rights could not be loaded from the service. The removal routes below still stand.",
  nextRightBinds: "Who it binds",
  nextRightNeeds: "What it takes",
  nextRightDeadline: "Deadlines",
  nextRightNotes: "Good to know",
  nextSources: "Sources",

  nextHolder: "Who holds it",
  nextHolderUnknown: "Not known here: this dataset is not in photocheck's catalog. Its disclosure page may say.",
  nextStatus: "Status",
  nextStatus_distributed: "Still distributed",
  nextStatus_restricted: "Handed out only on request or under an agreement",
  nextStatus_withdrawn: "Withdrawn: no longer distributed",
  nextStatus_withdrawn_circulating: "Withdrawn, but copies still circulate",
  nextContact: "Contact",
  nextRemovalHeading: "How to ask for removal",
  nextRemovalLink: "Where to ask for removal",
  nextSearchLink: "Look yourself up in this dataset",
  nextRemovalNone:
    "Its holder names no way to ask for removal. You can still write to them: the letter below asks for it.",

  nextLetterSummary: "Draft a request letter",
  nextLetterIntro:
    "Written in this browser from the facts above and your result; nothing of it is sent anywhere. Fill in " +
    "your name and how to reach you, read it through, then copy it into an email or save it.",
  nextLetterLabel: "Your letter (you can edit it)",
  nextLetterSendTo: "Send it to",
  nextLetterCopy: "Copy the letter",
  nextLetterDownload: "Download it as a text file",
  nextLetterCopied: "The letter was copied. Paste it into an email or a form.",
  nextLetterCopyFailed: "This browser did not allow copying. The letter is selected: copy it with your keyboard.",
  nextLetterSaved: "The letter was saved as {file}.",
  nextLetterKept: "You changed this letter, so it was kept as it was.",
  nextLetterRedraft: "Draft it again for where you live now",
};

/** The catalog's `where` as a list, whether it came as a list or as one string. */
function places(where) {
  if (Array.isArray(where)) return where.map(String);
  return where ? String(where).split(/\s*[,;]\s*/) : [];
}

/**
 * The remedies of `catalog` a person in `region` may use (none for "elsewhere"). Agency orders are
 * left out: they bind the companies under them, and nobody can invoke them.
 */
export function remediesFor(catalog, region) {
  const jurisdiction = JURISDICTIONS[region];
  if (!jurisdiction) return [];
  return (catalog?.remedies ?? []).filter(
    (remedy) => remedy.kind !== "agency_order" && places(remedy.where).includes(jurisdiction),
  );
}

const LIKELY = { match: 0, possible: 1 };

/**
 * The findings of a check's answer: the datasets that likely or possibly hold the person, likeliest
 * first, with their /api/v1/datasets facts (`info`) and what the letter may say of the answer.
 */
export function checkFindings(results, info, percent) {
  const byName = new Map((info?.datasets ?? []).map((dataset) => [dataset.name, dataset]));
  const checkedAt = new Date();
  return results
    .filter((result) => Object.hasOwn(LIKELY, result.verdict))
    .sort((a, b) => LIKELY[a.verdict] - LIKELY[b.verdict] || b.confidence - a.confidence)
    .map((result) => {
      const dataset = byName.get(result.dataset) ?? { name: result.dataset, title: result.title };
      const finding = { kind: "face", verdict: result.verdict, percent: percent(result.confidence) };
      return { dataset, entry: catalogEntry(dataset), finding, checkedAt };
    });
}

/**
 * The "What you can do next" section. `show(findings, catalog)` fills it; `clear()` empties and hides it.
 *
 * findings: [{ dataset: {name, title, removal_url}, entry: catalog entry or null, finding }] where
 * `finding` is what letter.js takes ({kind: "face", ...} or {kind: "flickr", ...}).
 */
export function createNextSteps(kit, { id }) {
  const { h, t, heading, outLink, webUrl, doc } = kit;
  const regionId = `${id}-region`;
  const regionSelect = h(
    "select",
    { id: regionId, class: "pc-select pc-region-select", "aria-describedby": `${regionId}-hint` },
    ...REGIONS.map((region) => h("option", { value: region, text: t(`nextRegion_${region}`) })),
  );
  regionSelect.value = regionFromLanguage(globalThis.navigator?.language);
  // A live region without role="status": the check's own status line stays the one status of the UI.
  const regionStatus = h("p", { class: "pc-visually-hidden pc-region-status", "aria-live": "polite" });
  const rights = h("div", { class: "pc-rights" });
  const list = h("ul", { class: "pc-next-list" });
  const element = h(
    "section",
    { class: "pc-next-steps", hidden: true, "aria-labelledby": `${id}-heading` },
    heading(0, { id: `${id}-heading`, class: "pc-heading" }, t("nextHeading")),
    h("p", { class: "pc-next-intro", text: t("nextIntro") }),
    h("p", { class: "pc-not-advice", role: "note", text: t("nextNotAdvice") }),
    h(
      "div",
      { class: "pc-region" },
      h("label", { for: regionId, class: "pc-region-label", text: t("nextRegionLabel") }),
      regionSelect,
      h("p", { id: `${regionId}-hint`, class: "pc-region-hint", text: t("nextRegionHint") }),
      regionStatus,
    ),
    list,
    rights,
  );

  const state = { findings: [], catalog: null, letters: [], downloads: new Set() };

  // ---- the rights in the chosen region ---------------------------------------------------------

  function sourceLinks(sources) {
    const links = (sources ?? [])
      .map((source) => [webUrl(source?.url), source?.title || source?.url])
      .filter(([url]) => url);
    if (!links.length) return null;
    return h(
      "p",
      { class: "pc-sources" },
      `${t("nextSources")}: `,
      ...links.flatMap(([url, title], n) => [n ? ", " : null, outLink(url, title)]),
    );
  }

  function facts(pairs) {
    const shown = pairs.filter(([, value]) => value != null && value !== "");
    if (!shown.length) return null;
    return h(
      "dl",
      { class: "pc-facts" },
      ...shown.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
    );
  }

  function renderRights() {
    const region = regionSelect.value;
    const title = heading(1, { class: "pc-rights-title" }, t("nextRightsHeading"));
    if (!state.catalog) {
      rights.replaceChildren(title, h("p", { text: t("nextRightsUnknown") }));
      return;
    }
    const remedies = remediesFor(state.catalog, region);
    if (!remedies.length) {
      rights.replaceChildren(title, h("p", { class: "pc-rights-none", text: t("nextRightsNone") }));
      return;
    }
    rights.replaceChildren(
      title,
      h(
        "ul",
        { class: "pc-remedies" },
        ...remedies.map((remedy) =>
          h(
            "li",
            { class: "pc-remedy", "data-remedy": remedy.name },
            heading(2, { class: "pc-remedy-title" }, remedy.title || remedy.name),
            facts([
              [t("nextRightBinds"), remedy.binds],
              [t("nextRightNeeds"), remedy.needs],
              [t("nextRightDeadline"), remedy.deadline],
              [t("nextRightNotes"), remedy.notes],
            ]),
            sourceLinks(remedy.sources),
          ),
        ),
      ),
    );
  }

  // ---- one dataset ---------------------------------------------------------------------------

  function contactNode(contact) {
    if (!contact) return null;
    const email = contactEmail(contact);
    if (email) return h("a", { href: `mailto:${email}`, text: email });
    const url = webUrl(contact);
    return url ? outLink(url, url) : String(contact);
  }

  function renderRemoval(entry, dataset) {
    const removal = entry?.removal ?? {};
    const url = webUrl(removal.url) ?? webUrl(dataset.removal_url);
    const search = webUrl(entry?.search_url);
    const steps = (removal.steps ?? []).filter(Boolean);
    const has = removal.summary || steps.length || url;
    return h(
      "div",
      { class: "pc-removal-route" },
      heading(2, { class: "pc-next-subtitle" }, t("nextRemovalHeading")),
      has ? null : h("p", { class: "pc-removal-none", text: t("nextRemovalNone") }),
      removal.summary ? h("p", { class: "pc-removal-summary", text: removal.summary }) : null,
      steps.length ? h("ol", { class: "pc-removal-steps" }, ...steps.map((step) => h("li", { text: step }))) : null,
      url || search
        ? h(
            "ul",
            { class: "pc-links" },
            url ? h("li", {}, outLink(url, t("nextRemovalLink"), { class: "pc-removal-link" })) : null,
            search ? h("li", {}, outLink(search, t("nextSearchLink"), { class: "pc-search-link" })) : null,
          )
        : null,
    );
  }

  function renderLetter(item, number) {
    const textareaId = `${id}-letter-${number}`;
    const textarea = h("textarea", {
      id: textareaId,
      class: "pc-letter-text",
      rows: "16",
      spellcheck: "true",
      "aria-describedby": `${textareaId}-intro`,
    });
    const status = h("p", { class: "pc-letter-status", role: "status", "aria-live": "polite" });
    const kept = h("p", { class: "pc-letter-kept", hidden: true });
    const sendTo = h("p", { class: "pc-letter-to" });
    const letter = { item, textarea, status, kept, sendTo, edited: false, draft: null };

    const redraft = h("button", {
      type: "button",
      class: "pc-button pc-letter-redraft",
      text: t("nextLetterRedraft"),
      onclick: () => {
        draft(letter, true);
        textarea.focus();
      },
    });
    kept.append(h("span", { text: `${t("nextLetterKept")} ` }), redraft);
    textarea.addEventListener("input", () => {
      letter.edited = true;
      status.textContent = "";
    });
    const copyButton = h("button", {
      type: "button",
      class: "pc-button pc-button-primary pc-letter-copy",
      text: t("nextLetterCopy"),
      onclick: () => copyLetter(letter),
    });
    const downloadButton = h("button", {
      type: "button",
      class: "pc-button pc-letter-download",
      text: t("nextLetterDownload"),
      onclick: () => downloadLetter(letter),
    });
    letter.element = h(
      "details",
      { class: "pc-letter" },
      h("summary", { class: "pc-letter-summary", text: t("nextLetterSummary") }),
      h(
        "div",
        { class: "pc-letter-body" },
        h("p", { id: `${textareaId}-intro`, class: "pc-letter-intro", text: t("nextLetterIntro") }),
        sendTo,
        h("label", { for: textareaId, class: "pc-letter-label", text: t("nextLetterLabel") }),
        textarea,
        kept,
        h("div", { class: "pc-actions" }, copyButton, downloadButton),
        status,
      ),
    );
    draft(letter, true);
    return letter;
  }

  function draft(letter, replace) {
    const { dataset, entry, finding, checkedAt } = letter.item;
    letter.draft = draftLetter({ dataset, entry, finding, region: regionSelect.value, checkedAt });
    const contact = contactNode(entry?.contact);
    letter.sendTo.replaceChildren(...(contact ? [`${t("nextLetterSendTo")}: `, contact] : []));
    letter.sendTo.hidden = !contact;
    if (replace || !letter.edited) {
      letter.textarea.value = letter.draft.text;
      letter.edited = false;
      letter.kept.hidden = true;
    } else {
      letter.kept.hidden = false;
    }
  }

  async function copyLetter(letter) {
    const text = letter.textarea.value;
    try {
      await navigator.clipboard.writeText(text);
      letter.status.textContent = t("nextLetterCopied");
    } catch {
      // No clipboard API (a page that is not https://) or no permission: select it for the person.
      letter.textarea.focus();
      letter.textarea.select();
      let copied = false;
      try {
        copied = doc.execCommand("copy");
      } catch {
        copied = false;
      }
      letter.status.textContent = t(copied ? "nextLetterCopied" : "nextLetterCopyFailed");
    }
  }

  function downloadLetter(letter) {
    const blob = new Blob([letter.textarea.value], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    state.downloads.add(url);
    const link = h("a", { href: url, download: letter.draft.fileName, hidden: true });
    letter.element.append(link);
    link.click();
    link.remove();
    // The browser has the file once the click is handled; the URL goes soon after, or with the answer.
    setTimeout(() => forgetDownload(url), 10_000);
    letter.status.textContent = t("nextLetterSaved", { file: letter.draft.fileName });
  }

  function forgetDownload(url) {
    if (state.downloads.delete(url)) URL.revokeObjectURL(url);
  }

  function renderItem(item, number) {
    const { dataset, entry } = item;
    const status = entry?.status
      ? [t(`nextStatus_${entry.status}`), entry.status_note].filter(Boolean).join(". ")
      : null;
    const letter = renderLetter(item, number);
    state.letters.push(letter);
    return h(
      "li",
      { class: "pc-next", "data-dataset": dataset.name },
      heading(1, { class: "pc-next-title" }, entry?.title || dataset.title || dataset.name),
      facts([
        [t("nextHolder"), entry?.maintainer || t("nextHolderUnknown")],
        [t("nextStatus"), status],
        [t("nextContact"), contactNode(entry?.contact)],
      ]),
      renderRemoval(entry, dataset),
      letter.element,
    );
  }

  regionSelect.addEventListener("change", () => {
    renderRights();
    for (const letter of state.letters) draft(letter, false);
    regionStatus.textContent = t("nextRegionChanged", { region: t(`nextRegion_${regionSelect.value}`) });
  });

  return {
    element,
    /** Show the next steps for `findings` (none: the section hides). */
    show(findings, catalog) {
      clear();
      state.catalog = catalog ?? null;
      if (!findings.length) return;
      state.findings = findings;
      renderRights();
      list.replaceChildren(...findings.map(renderItem));
      element.hidden = false;
    },
    clear,
  };

  function clear() {
    for (const url of [...state.downloads]) forgetDownload(url);
    state.findings = [];
    state.letters = [];
    list.replaceChildren();
    rights.replaceChildren();
    regionStatus.textContent = "";
    element.hidden = true;
  }
}
