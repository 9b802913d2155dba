// The on-device mode of the check UI: the photo never leaves this device.
//
// In this mode the face is found, aligned and embedded here (face-pipeline.js, in onnxruntime-web),
// and only its 128 numbers and two quality measures go to /api/v1/check-embedding; the answer is the
// one the upload check gives. The runtime and the models (tens of MB) load from the service on the
// first on-device check, with a progress bar, and the browser may cache them: they hold nothing of
// the person. Where this browser or this service cannot do it, the mode says why and the upload check
// stays. check-ui.js mounts it with createOnDevice() and asks it for answers while it is chosen.

export const ON_DEVICE_STRINGS = {
  modeLegend: "Where is your photo checked?",
  modeUpload: "On this service: the photo is sent, checked in memory and forgotten.",
  modeOnDevice: "On this device: the photo stays here; only 128 numbers describing the face are sent.",
  modeOnDeviceSize: "The first check on this device downloads {size} of face models, once.",
  onDeviceUnavailable: "Checking on this device is not available here: {reason} The check by sending the photo works.",
  onDeviceNoWebAssembly: "this browser cannot run WebAssembly.",
  onDeviceNoAssets: "this service was installed without the on-device models.",
  onDeviceOtherModel: "this service compares faces with a model that does not run in a browser.",
  onDeviceLoading: "Loading the on-device check ({size}, only the first time)…",
  onDeviceProgress: "Loading the on-device check",
  onDeviceChecking: "Finding and describing the face on this device…",
  onDeviceFailed: "The photo could not be checked on this device: {reason}",
  onDeviceLoadFailed: "the on-device check could not start in this browser ({detail}).",
  onDeviceUnreadable: "this browser cannot read this photo's format. Save it as JPEG or PNG, or send it instead.",
  onDeviceTooLarge: "this photo has too many pixels. Use a smaller copy of it.",
  onDeviceFallback: "Send the photo instead",
  onDeviceNoFace:
    "No face was found in this photo. Use a photo where your face is clearly visible, facing the camera, and not too dark.",
};

const MODES = ["upload", "on-device"];
const ASSETS = "/static/ondevice/";

/**
 * The mode chooser and the on-device pipeline for one mounted check UI.
 *
 * h, t: check-ui's element and wording helpers; apiBase and apiFetch: its service; uid: its id prefix;
 * mode: the mode chosen first ("upload" unless told); onFallback(): run the check by upload instead.
 */
export function createOnDevice({ h, t, apiBase, apiFetch, uid, mode = "upload", locale = "en", onFallback }) {
  const megabytes = new Intl.NumberFormat(locale, { style: "unit", unit: "megabyte", maximumFractionDigits: 1 });
  const size = (bytes) => megabytes.format(bytes / 1e6);
  let chosen = MODES.includes(mode) ? mode : "upload";
  let offer = null; // /api/v1/datasets' on_device
  let pipeline = null; // Promise of a FacePipeline, kept for the page's life
  let photo = null; // { blob, image, faces } of the photo being checked, forgotten with it

  const radios = MODES.map((value) =>
    h("input", { type: "radio", name: `${uid}-mode`, value, class: "pc-mode-input", checked: value === chosen }),
  );
  const sizeNote = h("span", { class: "pc-mode-size", hidden: true });
  const unavailable = h("p", { class: "pc-mode-unavailable", hidden: true });
  const fallback = h("button", { type: "button", class: "pc-button pc-fallback", hidden: true, text: t("onDeviceFallback") });
  const progress = h("progress", { class: "pc-progress", hidden: true, max: "1", value: "0", "aria-label": t("onDeviceProgress") });
  const element = h(
    "fieldset",
    { class: "pc-mode" },
    h("legend", { class: "pc-mode-legend", text: t("modeLegend") }),
    h("label", { class: "pc-mode-choice" }, radios[0], h("span", { text: t("modeUpload") })),
    h("label", { class: "pc-mode-choice" }, radios[1], h("span", {}, t("modeOnDevice"), " ", sizeNote)),
    unavailable,
    progress,
    fallback,
  );
  for (const radio of radios) {
    radio.addEventListener("change", () => {
      if (radio.checked) chosen = radio.value;
      fallback.hidden = true;
    });
  }
  fallback.addEventListener("click", () => {
    choose("upload");
    fallback.hidden = true;
    onFallback?.();
  });

  function choose(value) {
    chosen = value;
    for (const radio of radios) radio.checked = radio.value === value;
  }

  function disable(reason) {
    radios[1].disabled = true;
    if (chosen === "on-device") choose("upload");
    unavailable.textContent = t("onDeviceUnavailable", { reason });
    unavailable.hidden = false;
  }

  /** What the service offers (the on_device object of /api/v1/datasets); null: an older service. */
  function setOffer(value) {
    offer = value ?? { available: false, reason: "no_assets" };
    const missing = typeof WebAssembly !== "object" ? "onDeviceNoWebAssembly" : null;
    if (missing) return disable(t(missing));
    if (!offer.available) return disable(t(offer.reason === "other_model" ? "onDeviceOtherModel" : "onDeviceNoAssets"));
    radios[1].disabled = false;
    unavailable.hidden = true;
    sizeNote.textContent = t("modeOnDeviceSize", { size: size(offer.download_bytes) });
    sizeNote.hidden = false;
  }

  async function loadPipeline(say) {
    if (!pipeline) {
      say(t("onDeviceLoading", { size: size(offer.download_bytes) }));
      progress.hidden = false;
      const base = new URL(`${apiBase}${ASSETS}`, location.href);
      pipeline = (async () => {
        const response = await fetch(new URL("manifest.json", base), { credentials: "omit", referrerPolicy: "no-referrer", cache: "no-cache" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const manifest = await response.json();
        const { FacePipeline } = await import("./face-pipeline.js");
        return FacePipeline.load(base, manifest, ({ loaded, total }) => {
          progress.max = total;
          progress.value = loaded;
        });
      })();
      pipeline.then(
        () => (progress.hidden = true),
        () => {
          progress.hidden = true;
          pipeline = null; // another try may work (a dropped connection)
        },
      );
    }
    return pipeline;
  }

  const failure = (code, message, status = 0, extra = {}) => ({
    response: { ok: false, status },
    answer: { error: { code, message }, ...extra },
  });

  function runFailure(error) {
    fallback.hidden = false;
    const detail = error?.message || error?.name || String(error);
    return failure("on_device_failed", t("onDeviceFailed", { reason: t("onDeviceLoadFailed", { detail }) }));
  }

  /** Check the face `number` (null: the largest) of `blob` on this device: { response, answer }, where
   * answer has the shape of /api/v1/check's. `say` updates the UI's status line. */
  async function check(blob, number, signal, say) {
    fallback.hidden = true;
    let ready;
    try {
      ready = await loadPipeline(say);
    } catch (error) {
      fallback.hidden = false;
      const detail = error?.message || error?.name || String(error);
      return failure("on_device_failed", t("onDeviceFailed", { reason: t("onDeviceLoadFailed", { detail }) }));
    }
    if (signal.aborted) throw new DOMException("superseded", "AbortError");
    say(t("onDeviceChecking"));
    if (photo?.blob !== blob) {
      photo = null;
      let image;
      try {
        const { decodePhoto } = await import("./face-pipeline.js");
        image = await decodePhoto(blob);
      } catch (error) {
        fallback.hidden = false;
        const reason = error?.code === "image_too_large" ? t("onDeviceTooLarge") : t("onDeviceUnreadable");
        return failure(error?.code ?? "unreadable_here", t("onDeviceFailed", { reason }));
      }
      try {
        photo = { blob, image, faces: await ready.detect(image) };
      } catch (error) {
        return runFailure(error);
      }
    }
    if (signal.aborted) throw new DOMException("superseded", "AbortError");
    const faces = photo.faces.map((face) => ({ box: face.box.map((v) => Math.round(v)), score: Math.round(face.score * 100) / 100 }));
    const found = { faces_detected: faces.length, faces };
    if (!faces.length) return failure("no_face", t("onDeviceNoFace"), 422, found);
    const chosenFace = Math.min(number ?? 0, faces.length - 1);
    let described;
    try {
      described = await ready.describe(photo.image, photo.faces[chosenFace]);
    } catch (error) {
      return runFailure(error);
    }
    if (signal.aborted) throw new DOMException("superseded", "AbortError");
    const body = JSON.stringify({
      // Nine significant digits hold a float32 exactly; the whole body stays under 2 KB.
      embedding: Array.from(described.embedding, (v) => Number(v.toPrecision(9))),
      face: { size: described.quality.size, sharpness: described.quality.sharpness },
    });
    const response = await apiFetch("/api/v1/check-embedding", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      signal,
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (!response.ok || !answer || answer.error) return { response, answer: answer && { ...answer, ...found } };
    return {
      response,
      answer: {
        ...found,
        face: { number: chosenFace, box: faces[chosenFace].box, quality: answer.face.quality },
        results: answer.results,
        index: answer.index,
        error: null,
      },
    };
  }

  return {
    element,
    setOffer,
    check,
    /** Whether the next check runs on this device. */
    get active() {
      return chosen === "on-device" && Boolean(offer?.available) && !radios[1].disabled;
    },
    /** Drop the photo's pixels and faces (a new photo, or the UI going away). */
    forget() {
      photo = null;
      fallback.hidden = true;
    },
  };
}
