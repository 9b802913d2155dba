// The /widget page: copy the snippet, and try the settings on the live preview.
const code = document.querySelector("#snippet code");
const preview = document.querySelector(".preview[data-photocheck]");
const controls = document.querySelector(".preview-controls");
const scriptLine = code.textContent.split("\n").slice(1).join("\n");
const defaultAccent = controls.elements.accent.value;

function update() {
  const accent = controls.elements.accent.value;
  const scheme = controls.elements.scheme.value;
  const attributes = ["data-photocheck"];
  if (accent !== defaultAccent) attributes.push(`data-theme-accent="${accent}"`);
  if (scheme) attributes.push(`data-color-scheme="${scheme}"`);
  code.textContent = `<div ${attributes.join(" ")}></div>\n${scriptLine}`;
  // The widget reads data-theme-* once; the custom property changes it live.
  if (accent !== defaultAccent) preview.style.setProperty("--pc-accent", accent);
  else preview.style.removeProperty("--pc-accent");
  if (scheme) preview.dataset.colorScheme = scheme;
  else delete preview.dataset.colorScheme;
}

controls.addEventListener("input", update);
controls.addEventListener("submit", (event) => event.preventDefault());

const copy = document.querySelector(".copy-button");
const copyStatus = document.querySelector(".copy-status");
if (navigator.clipboard?.writeText) {
  copy.hidden = false;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      copyStatus.textContent = "Copied.";
    } catch {
      copyStatus.textContent = "The browser did not allow copying; select the snippet and copy it instead.";
    }
  });
}
