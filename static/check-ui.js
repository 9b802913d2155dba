// The photocheck UI: choose or take a photo, send it to the check API, show the answer.
//
// Everything is built inside the given root (an Element or a ShadowRoot) and found through
// references kept here, never through global selectors, so the same module can run inside a
// shadow root on someone else's page, calling the API on another origin.
//
// Nothing about the photo or the answer is stored: no cookies, no web storage, no caches.

import { CATALOG_STRINGS, catalogFacts, catalogLoader, createUndisclosed } from "./catalog-view.js";
import { LOOKUP_STRINGS, createLookup, createTabs } from "./lookup.js";
import { NEXT_STEPS_STRINGS, checkFindings, createNextSteps } from "./next-steps.js";
import { createOnDevice, ON_DEVICE_STRINGS } from "./on-device.js";

/** All wording the UI shows. Override any of it with `options.strings`; `{name}` is filled in. */
export const DEFAULT_STRINGS = {
  locale: "en",

  chooseLabel: "Choose a photo",
  dropHint: "or drop a photo here",
  selfieButton: "Take a selfie",
  privacyNote:
    "Your photo is checked in memory and then forgotten: nothing is stored or logged. " +
    "The answer names datasets, never other people.",
  privacyLink: "What happens to your photo",
  newTab: "(opens in a new tab)",

  cameraHeading: "Take a selfie",
  cameraVideoLabel: "Camera preview",
  captureButton: "Take the photo",
  cameraCancel: "Cancel",
  cameraStarting: "Starting the camera…",
  cameraReady: "The camera is on. Look at it and take the photo.",
  cameraStopped: "The camera is off.",
  cameraInsecure:
    "The camera can only be used on a secure (https://) page, and this page is not one. " +
    "You can still choose a photo instead.",
  cameraUnsupported: "This browser does not let this page use a camera. You can still choose a photo instead.",
  cameraDenied:
    "The camera was not allowed. To take a selfie, allow the camera for this site in your browser's settings. " +
    "You can still choose a photo instead.",
  cameraMissing: "No camera was found on this device. You can still choose a photo instead.",
  cameraBusy: "The camera could not be started; another app may be using it. You can still choose a photo instead.",
  cameraFailed: "The camera could not be started. You can still choose a photo instead.",

  photoAlt: "The photo you chose",
  photoAltFaces: "The photo you chose, with the faces found outlined",
  photoAltNumbered: "Photo {number} you chose",
  photoTitle: "Photo {number}",
  previewUnavailable: "This browser cannot show this photo, but it can still be checked.",

  checking: "Checking your photo…",
  checkingPhotos: "Checking your {count} photos together…",
  checkingFace: "Checking face {number}…",
  checked: "Done: the results for {count} datasets are below.",
  checkedOne: "Done: the result for {count} dataset is below.",
  checkedFaceOfMany: "{count} faces were found; this is face {number}. You can pick another one.",
  checkedTogether: "{photos} photos of you were checked together, for one surer answer.",
  checkFailed: "The photo could not be checked.",

  addPhoto: "Add another photo of yourself (up to 5)",
  addPhotoHint: "More photos, surer answer. Use photos of you (in a group photo, pick your face).",
  morePhotosSurer:
    "One photo can only say so much: more photos of you give a surer answer. Add another photo of yourself " +
    "(up to 5) and they are checked together.",
  morePhotosOnDevice:
    "More photos of you give a surer answer. On this device one photo is checked at a time: to check up to " +
    "5 together, choose “On this service”.",
  onDeviceOnePhoto:
    "On this device one photo is checked at a time. To check your photos together, choose “On this service”, " +
    "or remove all but one.",
  removePhoto: "Remove this photo",
  removePhotoLabel: "Remove photo {number}",
  photoNotUsed: "This photo was not used: {message}",
  photoDiffers: "This does not look like the person in {photos}.",
  photoNumber: "photo {number}",

  facesLegend: "{count} faces were found. Which one is you?",
  faceLabel: "Face {number}",
  faceLabelLargest: "Face {number} (largest)",

  resultsHeading: "Results",
  resultsExplained:
    "How to read the percentage: it is an estimate of the chance that a dataset holds a photo of the person " +
    "in your photo, not a score of how alike two faces look. It starts from an assumed {prior} chance that " +
    "a person is in a dataset. The bigger a dataset, the likelier a chance lookalike, so the same likeness " +
    "counts for less there. “Not found” is not proof: the check only sees the photos a dataset disclosed.",
  verdictMatch: "Likely in this dataset",
  verdictPossible: "Possibly in this dataset",
  verdictNoMatch: "Not found",
  confidence: "estimated chance that this dataset holds a photo of you",
  percentAbove: "over 99%",
  percentBelow: "under 1%",
  explainMatch: "A face in this dataset is very likely the person in your photo.",
  explainPossible:
    "A face in this dataset looks like the person in your photo, but it may be someone who just looks alike. " +
    "Checking another clear photo of yourself can make the answer surer.",
  explainNoMatch: "No face in this dataset looks enough like the person in your photo.",
  lowQuality:
    "The face in your photo is small or blurred, so the check can say less: a “Not found” is less " +
    "certain. A sharper photo, taken closer, says more.",
  disclosureLink: "About this dataset",
  removalLink: "Ask for your photos to be removed",
  noRemoval: "This dataset names no way to ask for removal; its disclosure may name a contact.",
  date: "Published: {date}",
  license: "Licence: {license}",

  datasetsHeading: "Datasets this service checks",
  datasetsLoading: "Loading the list of datasets…",
  datasetsSummary: "{datasets} datasets, with {faces} faces in all.",
  datasetsSummaryOne: "{datasets} dataset, with {faces} faces in all.",
  datasetsFailed: "The list of datasets could not be loaded.",
  datasetFaces: "{count} faces",
  datasetFacesOne: "{count} face",

  errorNetwork: "The service could not be reached. Check your connection and try again.",
  errorUnexpected: "The service gave an unexpected answer (HTTP {status}). Try again in a moment.",
  errorTooLarge: "This photo is too large to send. Try a smaller copy of it.",

  ...NEXT_STEPS_STRINGS,
  ...CATALOG_STRINGS,
  ...LOOKUP_STRINGS,
  ...ON_DEVICE_STRINGS,
};

const VERDICTS = {
  match: { words: "verdictMatch", explain: "explainMatch", rank: 0 },
  possible: { words: "verdictPossible", explain: "explainPossible", rank: 1 },
  no_match: { words: "verdictNoMatch", explain: "explainNoMatch", rank: 2 },
};

let mountCount = 0;
let cardCount = 0;

/** The most photos of one person checked together (indexer/template.py's MAX_PHOTOS). */
const MAX_PHOTOS = 5;

/**
 * Render the check UI into `root` and return a handle whose `destroy()` stops the camera,
 * forgets the photo and empties the root.
 *
 * options.apiBase      origin (and path prefix) of the photocheck service; "" = this page's origin
 * options.strings      overrides for DEFAULT_STRINGS
 * options.privacyUrl   the privacy page; defaults to `${apiBase}/privacy`
 * options.stylesheet   URL of check-ui.css to load into the root (for a shadow root)
 * options.headingLevel level of the UI's section headings (default 2)
 * options.lookup       false to leave out the "Search by Flickr account" tab
 * options.mode         "upload" (default) or "on-device": where the face is found and described first
 */
/**
 * What the page's modules build with: an element builder, the strings (with {name} values and a
 * "<key>One" form for a count of one), headings from ``level`` down, links that open a new tab, and
 * the guards for what the index and the API send. mountCheck and the /next-steps page share it.
 */
export function createKit(doc, strings, level = 2) {
  const numbers = new Intl.NumberFormat(strings.locale);
  const t = (key, values = {}) =>
    String(strings[key] ?? key).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? values[name] : whole));
  // Picks "<key>One" for a count of one, when the strings have it.
  const tc = (key, count, values = {}) =>
    t(count === 1 && `${key}One` in strings ? `${key}One` : key, { count: numbers.format(count), ...values });

  function h(tag, attrs = {}, ...children) {
    const el = doc.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value == null) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : value);
    }
    el.append(...children.flat().filter((child) => child != null && child !== false));
    return el;
  }

  const heading = (depth, attrs, text) => h(`h${Math.min(level + depth, 6)}`, { ...attrs, text });

  // A link that leaves the page: a new tab, so the answer on this page (kept nowhere else) survives.
  const outLink = (href, text, attrs = {}) =>
    h(
      "a",
      { ...attrs, href, target: "_blank", rel: "noopener noreferrer" },
      text,
      h("span", { class: "pc-visually-hidden", text: ` ${t("newTab")}` }),
    );

  // Only web links from the index become links: a javascript: URL there must not run here.
  function webUrl(value) {
    if (!value) return null;
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  return { h, t, tc, heading, outLink, webUrl, readJson, doc, strings, numbers };
}

export function mountCheck(root, options = {}) {
  const strings = { ...DEFAULT_STRINGS, ...options.strings };
  const apiBase = String(options.apiBase ?? "").replace(/\/+$/, "");
  const privacyUrl = options.privacyUrl ?? `${apiBase}/privacy`;
  const level = Math.min(Math.max(Number(options.headingLevel) || 2, 1), 5);
  const doc = root.ownerDocument ?? document;
  const uid = `pc-${++mountCount}`;
  // What the modules beside this one build with (next-steps.js, catalog-view.js, lookup.js).
  const kit = {
    ...createKit(doc, strings, level),
    percent,
    api: (path, init) => apiFetch(path, init),
    loadDatasets: () => loadDatasets(),
  };
  const { h, t, tc, heading, outLink, webUrl, readJson, numbers } = kit;
  kit.loadCatalog = catalogLoader(kit);
  const nextSteps = createNextSteps(kit, { id: `${uid}-next` });
  const undisclosed = createUndisclosed(kit, { id: `${uid}-undisclosed` });
  const lookup = options.lookup === false ? null : createLookup(kit, { id: `${uid}-lookup` });

  // ---- the skeleton ------------------------------------------------------------------------

  const fileInput = h("input", { type: "file", accept: "image/*", class: "pc-visually-hidden pc-file" });
  const selfieButton = h("button", { type: "button", class: "pc-button pc-selfie", text: t("selfieButton") });
  const dropZone = h(
    "div",
    { class: "pc-drop" },
    h(
      "div",
      { class: "pc-drop-actions" },
      h("label", { class: "pc-button pc-button-primary pc-pick" }, fileInput, h("span", { text: t("chooseLabel") })),
      selfieButton,
    ),
    h("p", { class: "pc-drop-hint", text: t("dropHint") }),
  );
  const privacyNote = h(
    "p",
    { class: "pc-privacy-note" },
    `${t("privacyNote")} `,
    // Embedded on another site, the privacy page opens beside it rather than replacing it.
    apiBase
      ? outLink(privacyUrl, t("privacyLink"), { class: "pc-privacy-link" })
      : h("a", { href: privacyUrl, class: "pc-privacy-link", text: t("privacyLink") }),
  );

  // Where the face is described: on the server (upload) or here (on-device.js).
  const onDevice = createOnDevice({
    h,
    t,
    apiBase,
    apiFetch: (...args) => apiFetch(...args),
    uid,
    mode: options.mode,
    locale: strings.locale,
    onFallback: () => state.photos.length && runCheck(),
  });

  const video = h("video", {
    class: "pc-video",
    playsinline: true,
    muted: true,
    autoplay: true,
    "aria-label": t("cameraVideoLabel"),
  });
  video.muted = true; // the attribute alone does not mute a stream in every browser
  const captureButton = h("button", {
    type: "button",
    class: "pc-button pc-button-primary pc-capture",
    text: t("captureButton"),
  });
  const cancelCameraButton = h("button", { type: "button", class: "pc-button pc-camera-cancel", text: t("cameraCancel") });
  const cameraPanel = h(
    "section",
    { class: "pc-camera", hidden: true, "aria-labelledby": `${uid}-camera` },
    heading(0, { id: `${uid}-camera`, class: "pc-heading" }, t("cameraHeading")),
    h("div", { class: "pc-video-frame" }, video),
    h("div", { class: "pc-actions" }, captureButton, cancelCameraButton),
  );

  const statusLine = h("p", { class: "pc-status", role: "status", "aria-live": "polite" });
  const alertMessage = h("p", { class: "pc-alert-message" });
  const alertHint = h("p", { class: "pc-alert-hint", hidden: true });
  const alertBox = h("div", { class: "pc-alert", role: "alert", hidden: true }, alertMessage, alertHint);

  // The photos of the person, each in its own card (its faces outlined, its own face choice), and a
  // button to add another: up to MAX_PHOTOS are checked together, for one surer answer.
  const photoList = h("ol", { class: "pc-photos" });
  const addButton = h("button", { type: "button", class: "pc-button pc-add-photo", text: t("addPhoto") });
  const addHint = h("p", { class: "pc-add-hint" });
  const addArea = h("div", { class: "pc-add", hidden: true }, addButton, addHint);
  const photoArea = h("div", { class: "pc-photo-area", hidden: true }, photoList, addArea);

  const resultList = h("ul", { class: "pc-result-list" });
  const qualityNote = h("p", { class: "pc-quality-note", role: "note", hidden: true, text: t("lowQuality") });
  const resultsExplained = h("p", { class: "pc-results-explained" });
  const resultsArea = h(
    "section",
    { class: "pc-results", hidden: true, "aria-labelledby": `${uid}-results` },
    heading(0, { id: `${uid}-results`, class: "pc-heading" }, t("resultsHeading")),
    qualityNote,
    resultList,
    resultsExplained,
  );

  const datasetsSummary = h("p", { class: "pc-datasets-summary", text: t("datasetsLoading") });
  const datasetList = h("ul", { class: "pc-dataset-list" });
  const datasetsArea = h(
    "section",
    { class: "pc-datasets", "aria-labelledby": `${uid}-datasets` },
    heading(0, { id: `${uid}-datasets`, class: "pc-heading" }, t("datasetsHeading")),
    datasetsSummary,
    datasetList,
  );

  datasetsArea.append(undisclosed.element);
  const checkPanel = h(
    "div",
    { class: "pc-check-panel" },
    h("div", { class: "pc-start" }, dropZone, privacyNote, onDevice.element, undisclosed.pointer),
    cameraPanel,
    statusLine,
    alertBox,
    h("div", { class: "pc-answer" }, photoArea, resultsArea),
    nextSteps.element,
  );
  const tabs = lookup
    ? createTabs(kit, {
        id: `${uid}-tabs`,
        label: t("tabsLabel"),
        tabs: [
          { key: "check", label: t("checkTab"), panel: checkPanel },
          { key: "lookup", label: t("lookupTab"), panel: lookup.element },
        ],
      })
    : null;

  const container = h(
    "div",
    { class: "pc-check" },
    // Fetched without cookies or a Referer, like the API calls (on another origin, that needs CORS).
    options.stylesheet
      ? h("link", { rel: "stylesheet", href: options.stylesheet, crossorigin: "anonymous", referrerpolicy: "no-referrer" })
      : null,
    tabs?.element,
    checkPanel,
    lookup?.element,
    datasetsArea,
  );
  root.replaceChildren(container);

  // ---- state ---------------------------------------------------------------------------------

  const state = {
    // Each: { blob, url, size: Promise<{width, height} | null>, card, faces, face (the number chosen, or null) }
    photos: [],
    adding: false, // the file chooser was opened by "Add another photo"
    request: null, // the AbortController of the check in flight
    stream: null,
    datasets: null, // Promise of the /datasets answer, dropped again if it failed
    destroyed: false,
  };

  // ---- small helpers -------------------------------------------------------------------------

  function say(message) {
    statusLine.textContent = message;
  }

  function showAlert(message, hint = "") {
    alertMessage.textContent = message;
    alertHint.textContent = hint;
    alertHint.hidden = !hint;
    alertBox.hidden = false;
  }

  function clearAlert() {
    alertBox.hidden = true;
    alertMessage.textContent = "";
    alertHint.textContent = "";
  }

  function percent(value) {
    if (value >= 0.995) return t("percentAbove");
    if (value < 0.005) return t("percentBelow");
    return new Intl.NumberFormat(strings.locale, { style: "percent" }).format(value);
  }

  const apiFetch = (path, init = {}) =>
    fetch(`${apiBase}${path}`, { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer", ...init });

  // ---- the datasets --------------------------------------------------------------------------

  function loadDatasets() {
    if (!state.datasets) {
      state.datasets = apiFetch("/api/v1/datasets")
        .then(async (response) => {
          const body = await readJson(response);
          if (!response.ok || !body?.datasets) throw new Error(body?.error?.message ?? "");
          return body;
        })
        .catch((error) => {
          state.datasets = null; // so that a later call tries again
          throw error;
        });
    }
    return state.datasets;
  }

  function renderDatasets(info) {
    const { index, datasets } = info;
    datasetsSummary.textContent = t(index.datasets === 1 ? "datasetsSummaryOne" : "datasetsSummary", {
      datasets: numbers.format(index.datasets),
      faces: numbers.format(index.faces),
    });
    datasetList.replaceChildren(
      ...datasets.map((dataset) => {
        const disclosure = webUrl(dataset.disclosure_url);
        return h(
          "li",
          { class: "pc-dataset", "data-dataset": dataset.name },
          heading(1, { class: "pc-dataset-title" }, dataset.title),
          dataset.description ? h("p", { class: "pc-dataset-description", text: dataset.description }) : null,
          h("p", { class: "pc-meta", text: datasetFacts(dataset, true).join(" · ") }),
          disclosure ? h("p", {}, outLink(disclosure, t("disclosureLink"))) : null,
          catalogFacts(kit, dataset),
        );
      }),
    );
  }

  function datasetFacts(dataset, withFaces) {
    return [
      withFaces ? tc("datasetFaces", dataset.faces) : null,
      dataset.date ? t("date", { date: dataset.date }) : null,
      dataset.license ? t("license", { license: dataset.license }) : null,
    ].filter(Boolean);
  }

  function showDatasets() {
    loadDatasets().then((info) => {
      renderDatasets(info);
      onDevice.setOffer(info.on_device);
    }, (error) => {
      datasetsSummary.textContent = [t("datasetsFailed"), error.message].filter(Boolean).join(" ");
    });
    // A service without a catalog simply shows no never-disclosed collections.
    kit.loadCatalog().then(undisclosed.show, () => {});
  }

  // ---- the photo -----------------------------------------------------------------------------

  function usePhoto(blob) {
    if (!blob) return;
    forgetPhoto();
    addPhoto(blob);
  }

  function addPhoto(blob) {
    if (!blob || state.photos.length >= MAX_PHOTOS) return;
    const url = URL.createObjectURL(blob);
    const entry = { blob, url, size: null, card: null, faces: [], face: null };
    entry.card = createCard(entry);
    entry.card.img.src = url;
    // Boxes are placed in the photo's own pixels, so they wait for its size; a format this
    // browser cannot show (HEIC in most) still gets checked, just without a preview.
    entry.size = entry.card.img
      .decode()
      .then(() => ({ width: entry.card.img.naturalWidth, height: entry.card.img.naturalHeight }))
      .catch(() => null);
    state.photos.push(entry);
    photoList.append(entry.card.element);
    photoArea.hidden = false;
    renumber();
    entry.size.then((natural) => {
      const { frame } = entry.card;
      if (natural) {
        // The frame takes the photo's proportions, so boxes in percent stay on the faces at any size.
        frame.style.setProperty("--pc-ratio", `${natural.width} / ${natural.height}`);
        frame.style.setProperty("--pc-aspect", String(natural.width / natural.height));
        frame.style.setProperty("--pc-natural-width", `${natural.width}px`);
      } else {
        frame.hidden = true;
      }
    });
    runCheck();
  }

  function createCard(entry) {
    const legendId = `${uid}-faces-${++cardCount}`;
    const img = h("img", { class: "pc-img", alt: t("photoAlt") });
    const boxes = h("div", { class: "pc-boxes", "aria-hidden": "true" });
    const frame = h("div", { class: "pc-photo" }, img, boxes);
    const previewNote = h("p", { class: "pc-preview-note", hidden: true, text: t("previewUnavailable") });
    const legend = h("p", { class: "pc-faces-legend", id: legendId });
    const buttons = h("div", { class: "pc-face-buttons" });
    const picker = h(
      "div",
      { class: "pc-faces", role: "group", "aria-labelledby": legendId, hidden: true },
      legend,
      buttons,
    );
    const title = h("p", { class: "pc-photo-title", hidden: true });
    const note = h("p", { class: "pc-photo-note", hidden: true });
    const remove = h("button", {
      type: "button",
      class: "pc-button pc-remove-photo",
      hidden: true,
      text: t("removePhoto"),
    });
    remove.addEventListener("click", () => removePhoto(entry));
    const element = h("li", { class: "pc-photo-card" }, title, frame, previewNote, picker, note, remove);
    return { element, img, boxes, frame, previewNote, legend, buttons, picker, title, note, remove };
  }

  // Titles, alternative texts and remove buttons follow the photos' order (the API names them by it).
  function renumber() {
    const several = state.photos.length > 1;
    state.photos.forEach((entry, index) => {
      const number = numbers.format(index + 1);
      const { card } = entry;
      card.title.textContent = t("photoTitle", { number });
      card.title.hidden = !several;
      card.remove.hidden = !several;
      card.remove.setAttribute("aria-label", t("removePhotoLabel", { number }));
      if (!entry.faces.length) card.img.alt = several ? t("photoAltNumbered", { number }) : t("photoAlt");
    });
    updateAddArea();
  }

  function removePhoto(entry) {
    if (!state.photos.includes(entry)) return;
    if (state.photos.length === 1) {
      forgetPhoto();
      return;
    }
    const index = state.photos.indexOf(entry);
    state.photos.splice(index, 1);
    URL.revokeObjectURL(entry.url);
    entry.card.element.remove();
    renumber();
    // Keyboard focus goes to the next photo's remove button, or, with one photo left, to "Add another photo".
    if (state.photos.length > 1) state.photos[Math.min(index, state.photos.length - 1)].card.remove.focus();
    else addButton.focus();
    runCheck();
  }

  function updateAddArea(answered = !resultsArea.hidden) {
    const count = state.photos.length;
    addArea.hidden = count === 0 || count >= MAX_PHOTOS;
    addButton.hidden = onDevice.active;
    if (onDevice.active) addHint.textContent = t("morePhotosOnDevice");
    else addHint.textContent = count === 1 && answered ? t("morePhotosSurer") : t("addPhotoHint");
  }

  function forgetPhoto() {
    state.request?.abort();
    state.request = null;
    container.classList.remove("pc-busy");
    resultsArea.removeAttribute("aria-busy");
    for (const entry of state.photos) URL.revokeObjectURL(entry.url);
    state.photos = [];
    onDevice.forget();
    photoList.replaceChildren();
    photoArea.hidden = true;
    addArea.hidden = true;
    resultsArea.hidden = true;
    resultList.replaceChildren();
    nextSteps.clear();
    clearAlert();
  }

  async function drawFaces(entry, faces, chosen) {
    const natural = await entry.size;
    if (!state.photos.includes(entry)) return;
    const { boxes, img, previewNote } = entry.card;
    boxes.replaceChildren();
    if (!natural) {
      previewNote.hidden = !faces.length;
      return;
    }
    const clamp = (value) => Math.min(Math.max(value, 0), 100);
    faces.forEach((face, number) => {
      const [x, y, width, height] = face.box;
      const left = clamp((x / natural.width) * 100);
      const top = clamp((y / natural.height) * 100);
      const box = doc.createElement("span");
      box.className = number === chosen ? "pc-box pc-box-chosen" : "pc-box";
      box.dataset.face = String(number);
      box.style.left = `${left}%`;
      box.style.top = `${top}%`;
      box.style.width = `${clamp(((x + width) / natural.width) * 100) - left}%`;
      box.style.height = `${clamp(((y + height) / natural.height) * 100) - top}%`;
      if (faces.length > 1) box.append(h("span", { class: "pc-box-number", text: String(number) }));
      boxes.append(box);
    });
    if (faces.length) img.alt = t("photoAltFaces");
  }

  function renderFacePicker(entry, faces, chosen) {
    const { picker, legend, buttons } = entry.card;
    if (faces.length < 2) {
      picker.hidden = true;
      buttons.replaceChildren();
      return;
    }
    legend.textContent = t("facesLegend", { count: numbers.format(faces.length) });
    // Same photo, same faces: update the buttons in place so keyboard focus stays where it is.
    if (buttons.children.length !== faces.length) {
      buttons.replaceChildren(
        ...faces.map((_, number) =>
          h("button", {
            type: "button",
            class: "pc-button pc-face",
            "data-face": String(number),
            "aria-pressed": "false",
            text: t(number === 0 ? "faceLabelLargest" : "faceLabel", { number }), // from 0, as the API and CLI
            onclick: () => pickFace(entry, number),
          }),
        ),
      );
    }
    for (const button of buttons.children) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.face) === chosen));
    }
    picker.hidden = false;
  }

  function pickFace(entry, number) {
    if (!state.photos.includes(entry) || number === entry.face) return;
    entry.face = number;
    renderFacePicker(entry, entry.faces, number);
    drawFaces(entry, entry.faces, number);
    runCheck(entry);
  }

  /** What the answer says of one photo: its faces, the face used, and why it was not used. */
  function showPhoto(entry, record) {
    const chosen = record?.face?.number ?? null;
    const faces = record?.faces ?? [];
    entry.faces = faces;
    if (chosen != null) entry.face = chosen;
    drawFaces(entry, faces, chosen);
    renderFacePicker(entry, faces, chosen ?? entry.face ?? 0);
    const { card } = entry;
    const differs = (record?.differs_from ?? []).map((n) => t("photoNumber", { number: numbers.format(n + 1) }));
    const note = record?.error
      ? t("photoNotUsed", { message: record.error.message })
      : differs.length
        ? t("photoDiffers", { photos: differs.join(", ") })
        : "";
    card.note.textContent = note;
    card.note.hidden = !note;
    card.element.classList.toggle("pc-photo-unused", Boolean(record?.error));
    card.element.classList.toggle("pc-photo-differs", differs.length > 0);
  }

  // ---- the check -----------------------------------------------------------------------------

  /** Check every photo, together. `picked`: the photo whose face was just chosen, if that is why. */
  async function runCheck(picked = null) {
    state.request?.abort();
    const controller = new AbortController();
    state.request = controller;
    // A newer check, another photo or destroy() makes this one's answer moot.
    const superseded = () => controller.signal.aborted || state.request !== controller;
    const photos = [...state.photos];
    const several = photos.length > 1;

    const body = new FormData();
    // A neutral name: the real file names never leave this device.
    for (const entry of photos) body.append("image", entry.blob, "photo");
    if (photos.some((entry) => entry.face != null)) {
      body.append("face", photos.map((entry) => entry.face ?? 0).join(",")); // one per photo, as the CLI's --face
    }

    clearAlert();
    if (several) say(t("checkingPhotos", { count: numbers.format(photos.length) }));
    else say(picked ? t("checkingFace", { number: picked.face }) : t("checking"));
    container.classList.add("pc-busy");
    resultsArea.setAttribute("aria-busy", "true");

    let response;
    let answer;
    let info = null;
    let catalog = null;
    try {
      if (onDevice.active && several) {
        finish();
        fail(t("onDeviceOnePhoto"));
        return;
      }
      if (onDevice.active) {
        ({ response, answer } = await onDevice.check(photos[0].blob, photos[0].face, controller.signal, say));
      } else {
        response = await apiFetch("/api/v1/check", { method: "POST", body, signal: controller.signal });
        answer = await readJson(response);
      }
      // The dataset links come from /datasets, the rights from /catalog; without them the verdicts still stand.
      if (response.ok) {
        [info, catalog] = await Promise.all([loadDatasets().catch(() => null), kit.loadCatalog().catch(() => null)]);
      }
    } catch {
      if (superseded()) return;
      finish();
      fail(t("errorNetwork"));
      return;
    }
    if (superseded()) return;
    finish();

    // Per photo: what was found in it (the on-device answer and older services describe one photo only).
    const records = Array.isArray(answer?.photos)
      ? answer.photos
      : [{ faces: answer?.faces ?? [], face: answer?.face ?? null, error: null }];
    photos.forEach((entry, index) => showPhoto(entry, records[index]));

    if (!response.ok || !answer || answer.error) {
      const error = answer?.error;
      // A proxy in front may answer on its own, without the API's JSON.
      const fallback = response.status === 413 ? t("errorTooLarge") : t("errorUnexpected", { status: response.status });
      fail(error?.message ?? fallback); // the API's message says what to do (a closer photo...) itself
      return;
    }
    renderResults(answer.results, info);
    nextSteps.show(checkFindings(answer.results, info, percent), catalog);
    qualityNote.hidden = (answer.quality ?? answer.face?.quality) !== "low";
    updateAddArea(true);
    const done = tc("checked", answer.results.length);
    const used = records.filter((record) => !record.error).length;
    if (used > 1) {
      say(`${t("checkedTogether", { photos: numbers.format(used) })} ${done}`);
    } else {
      const which = t("checkedFaceOfMany", {
        count: numbers.format(answer.faces_detected),
        number: answer.face.number,
      });
      say(answer.faces_detected > 1 ? `${done} ${which}` : done);
    }

    function finish() {
      state.request = null;
      container.classList.remove("pc-busy");
      resultsArea.removeAttribute("aria-busy");
    }
  }

  function fail(message) {
    resultsArea.hidden = true;
    updateAddArea(false);
    resultList.replaceChildren();
    nextSteps.clear();
    say(t("checkFailed"));
    showAlert(message, "");
  }

  function renderResults(results, info) {
    const byName = new Map((info?.datasets ?? []).map((dataset) => [dataset.name, dataset]));
    const sorted = [...results].sort(
      (a, b) => (VERDICTS[a.verdict]?.rank ?? 3) - (VERDICTS[b.verdict]?.rank ?? 3) || b.confidence - a.confidence,
    );
    resultList.replaceChildren(...sorted.map((result) => renderResult(result, byName.get(result.dataset))));
    resultsExplained.textContent = t("resultsExplained", { prior: percent(info?.thresholds?.prior ?? 0.5) });
    resultsArea.hidden = false;
  }

  function renderResult(result, dataset) {
    const verdict = VERDICTS[result.verdict] ?? VERDICTS.no_match;
    const likely = result.verdict === "match" || result.verdict === "possible";
    const disclosure = webUrl(dataset?.disclosure_url);
    const removal = webUrl(dataset?.removal_url);
    const meter = h("span", { class: "pc-meter-fill" });
    meter.style.width = `${Math.round(Math.min(Math.max(result.confidence, 0), 1) * 100)}%`;
    const facts = dataset ? datasetFacts(dataset, false) : [];
    return h(
      "li",
      {
        class: `pc-result pc-result-${result.verdict}`,
        "data-dataset": result.dataset,
        "data-verdict": result.verdict,
      },
      h(
        "div",
        { class: "pc-result-head" },
        heading(1, { class: "pc-result-title" }, result.title),
        h("span", { class: "pc-verdict", text: t(verdict.words) }),
      ),
      h(
        "p",
        { class: "pc-confidence" },
        h("strong", { class: "pc-percent", text: percent(result.confidence) }),
        ` ${t("confidence")}`,
      ),
      h("span", { class: "pc-meter", "aria-hidden": "true" }, meter),
      h("p", { class: "pc-explain", text: t(verdict.explain) }),
      disclosure || (likely && removal)
        ? h(
            "ul",
            { class: "pc-links" },
            disclosure ? h("li", {}, outLink(disclosure, t("disclosureLink"), { class: "pc-disclosure" })) : null,
            likely && removal ? h("li", {}, outLink(removal, t("removalLink"), { class: "pc-removal" })) : null,
          )
        : null,
      likely && !removal ? h("p", { class: "pc-no-removal", text: t("noRemoval") }) : null,
      facts.length ? h("p", { class: "pc-meta", text: facts.join(" · ") }) : null,
    );
  }

  // ---- the camera ----------------------------------------------------------------------------

  async function startCamera() {
    if (state.stream) {
      captureButton.focus();
      return;
    }
    clearAlert();
    if (!navigator.mediaDevices?.getUserMedia) {
      // Browsers hide the camera API on pages that are not https:// (localhost excepted).
      showAlert(window.isSecureContext === false ? t("cameraInsecure") : t("cameraUnsupported"));
      return;
    }
    say(t("cameraStarting"));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 960 } },
        audio: false,
      });
    } catch (error) {
      say("");
      showAlert(cameraProblem(error));
      return;
    }
    if (state.destroyed) {
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    stopCamera(false);
    state.stream = stream;
    video.srcObject = stream;
    cameraPanel.hidden = false;
    video.play().catch(() => {}); // autoplay covers it where play() is refused
    captureButton.focus();
    say(t("cameraReady"));
  }

  function cameraProblem(error) {
    switch (error?.name) {
      case "NotAllowedError":
      case "SecurityError":
        return t("cameraDenied");
      case "NotFoundError":
      case "OverconstrainedError":
        return t("cameraMissing");
      case "NotReadableError":
      case "AbortError":
        return t("cameraBusy");
      default:
        return t("cameraFailed");
    }
  }

  function stopCamera(announce = true) {
    if (!state.stream) return;
    state.stream.getTracks().forEach((track) => track.stop());
    state.stream = null;
    video.srcObject = null;
    cameraPanel.hidden = true;
    if (announce) say(t("cameraStopped"));
  }

  function capture() {
    const { videoWidth: width, videoHeight: height } = video;
    if (!state.stream || !width || !height) return;
    const canvas = doc.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    canvas.toBlob(
      (blob) => {
        stopCamera(false);
        selfieButton.focus();
        usePhoto(blob);
      },
      "image/jpeg",
      0.92,
    );
  }

  // ---- events --------------------------------------------------------------------------------

  fileInput.addEventListener("change", () => {
    const [file] = fileInput.files;
    const adding = state.adding && state.photos.length > 0;
    state.adding = false;
    stopCamera(false);
    if (adding) addPhoto(file);
    else usePhoto(file);
    // Cleared so that choosing the same file again still counts as a change.
    fileInput.value = "";
  });
  // One file input for both: "Choose a photo" starts again, "Add another photo" adds to the photos.
  fileInput.closest("label").addEventListener("click", (event) => {
    if (event.target !== fileInput) state.adding = false; // "Add another photo" clicks the input itself
  });
  fileInput.addEventListener("cancel", () => (state.adding = false));
  addButton.addEventListener("click", () => {
    state.adding = true;
    fileInput.click();
  });
  onDevice.element.addEventListener("change", () => updateAddArea());
  selfieButton.addEventListener("click", startCamera);
  captureButton.addEventListener("click", capture);
  cancelCameraButton.addEventListener("click", () => {
    stopCamera();
    selfieButton.focus();
  });
  cameraPanel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      stopCamera();
      selfieButton.focus();
    }
  });

  // The whole UI takes a dropped photo, so a near miss does not make the browser open the file.
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  container.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropZone.classList.add("pc-drop-over");
  });
  container.addEventListener("dragleave", (event) => {
    if (!container.contains(event.relatedTarget)) dropZone.classList.remove("pc-drop-over");
  });
  container.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropZone.classList.remove("pc-drop-over");
    const [file] = event.dataTransfer.files;
    stopCamera(false);
    usePhoto(file);
  });

  showDatasets();

  return {
    /** Stop the camera, drop the photo and remove the UI. */
    destroy() {
      state.destroyed = true;
      stopCamera(false);
      forgetPhoto();
      lookup?.destroy();
      root.replaceChildren();
    },
  };
}
