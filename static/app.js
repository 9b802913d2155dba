// The photocheck home page: the check UI, mounted on the same origin as the API.
import { mountCheck } from "./check-ui.js";

const root = document.querySelector("[data-photocheck]");
if (root) mountCheck(root);
