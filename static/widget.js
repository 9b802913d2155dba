/* photocheck widget: the check on another site's page, in a shadow root. No build step.
 *
 *   <div data-photocheck></div>
 *   <script src="https://HOST/widget.js" defer crossorigin="anonymous" referrerpolicy="no-referrer"></script>
 *
 * Options, as attributes of the element: data-locale, data-heading-level, data-mode (upload|on-device:
 * where the face is described first), data-color-scheme
 * (light|dark), data-string-<name> (e.g. data-string-choose-label) or data-strings (JSON) for the
 * wording, data-theme-<name> for --pc-<name> (e.g. data-theme-accent="#8b1a5b"); the CSS custom
 * properties --pc-* set on the element or above it work too. See HOST/widget.
 * data-lookup="off" leaves out the "Search by Flickr account" tab.
 * Elements added later: photocheck.mount(element). */
(() => {
  const script = document.currentScript;
  if (!script?.src || window.photocheck?.mount) return;
  const base = new URL(script.src).origin;
  let ui;

  const camel = (name) => name[0].toLowerCase() + name.slice(1);
  const kebab = (name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).slice(1);

  function options(el) {
    const data = el.dataset;
    const strings = {};
    try {
      Object.assign(strings, JSON.parse(data.strings || "{}"));
    } catch {
      console.error("photocheck: data-strings is not a JSON object");
    }
    for (const [key, value] of Object.entries(data)) {
      let m = /^string([A-Z]\w*)$/.exec(key);
      if (m) strings[camel(m[1])] = value;
      m = /^theme([A-Z]\w*)$/.exec(key);
      if (m) el.style.setProperty(`--pc-${kebab(m[1])}`, value);
    }
    if (data.locale) strings.locale = data.locale;
    return { strings, headingLevel: data.headingLevel, lookup: data.lookup !== "off", mode: data.mode };
  }

  // The page's own content in the element (a link to the service, say) shows until the check is ready.
  async function mount(el) {
    if (el.shadowRoot) return null;
    const shadow = el.attachShadow({ mode: "open" });
    shadow.append(document.createElement("slot"));
    const { strings, headingLevel, lookup, mode } = options(el);
    try {
      ui ??= import(`${base}/static/check-ui.js`);
      const { mountCheck } = await ui;
      const handle = mountCheck(shadow, {
        apiBase: base,
        privacyUrl: `${base}/privacy`,
        stylesheet: `${base}/static/check-ui.css`,
        strings,
        headingLevel,
        lookup,
        mode,
      });
      const root = shadow.firstElementChild;
      // English unless told otherwise; translated strings without data-locale keep the page's language.
      const lang = strings.locale ?? (Object.keys(strings).length ? null : "en");
      if (lang) root.lang = lang;
      // Hidden until its styles arrive, so that the page never shows it unstyled.
      const link = shadow.querySelector("link");
      root.hidden = true;
      const show = () => (root.hidden = false);
      link ? (link.onload = link.onerror = show) : show();
      return handle;
    } catch (error) {
      ui = null; // the next mount tries again
      console.error(
        `photocheck: the check could not be loaded from ${base}. If this site (${location.origin}) should offer ` +
          "it, the service's operator can add it to PHOTOCHECK_WIDGET_ORIGINS.",
        error,
      );
      const link = document.createElement("a");
      link.href = `${base}/`;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = strings.loadFailedLink ?? new URL(base).host;
      const message = document.createElement("p");
      message.className = "pc-load-failed";
      message.append(strings.loadFailed ?? "The photo check could not be loaded here. It is available at ", link, ".");
      shadow.replaceChildren(message);
      return null;
    }
  }

  function mountAll() {
    for (const el of document.querySelectorAll("[data-photocheck]")) {
      mount(el).catch((error) => console.error("photocheck: cannot show the check in", el, error));
    }
  }

  window.photocheck = { mount };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
