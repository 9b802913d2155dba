// A request letter to a dataset's holder, drafted in the browser from the dataset's catalog facts and
// what the person found. Pure functions: nothing here touches the page or the network, so the letter
// is never sent anywhere; the person copies it or saves it, and sends it themselves.
//
// The letters are in English: they go to the holders of English-language datasets, and they cite the
// law in the words the holders' own privacy pages use. The person edits the draft before sending it.

/** The regions whose rights the page describes, in the order the choice lists them. */
export const REGIONS = ["eu", "uk", "california", "illinois", "elsewhere"];

/** How the catalog's remedies name each region's jurisdiction (`where`). */
export const JURISDICTIONS = {
  eu: "EU/EEA",
  uk: "UK",
  california: "California",
  illinois: "Illinois",
  elsewhere: null,
};

// Members of the EU and the EEA, by the region subtags of language tags (en-IE, de-AT, nb-NO...).
const EU_EEA = new Set(
  "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split(" "),
);

/**
 * The region to start from, read from a language tag such as navigator.language ("en-GB" -> "uk").
 * Only an explicit region subtag counts: a language alone ("de") says nothing about where a person
 * lives, and neither does "en-US" about which state.
 */
export function regionFromLanguage(tag) {
  let region;
  try {
    region = new Intl.Locale(String(tag)).region;
  } catch {
    return "elsewhere";
  }
  if (region === "GB") return "uk";
  if (region && EU_EEA.has(region)) return "eu";
  return "elsewhere";
}

/** The letter each region gets: the law it cites (or none), and the deadlines it states. */
export const LETTER_KINDS = {
  eu: "gdpr",
  uk: "uk-gdpr",
  california: "ccpa",
  illinois: "illinois",
  elsewhere: "plain",
};

const VERDICT_WORDS = {
  match: "Likely in this dataset",
  possible: "Possibly in this dataset",
};

function longDate(date, region) {
  const locale = region === "california" || region === "illinois" ? "en-US" : "en-GB";
  return new Intl.DateTimeFormat(locale, { dateStyle: "long" }).format(date);
}

function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A file name for the letter: only letters, digits and dashes, whatever the dataset's name holds. */
export function letterFileName(datasetName, date) {
  const slug =
    String(datasetName ?? "dataset")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 60) || "dataset";
  return `request-${slug}-${isoDate(date)}.txt`;
}

/** An email address in the catalog's `contact`, or null (it may be a web page instead). */
export function contactEmail(contact) {
  const value = String(contact ?? "").replace(/^mailto:/i, "");
  return /^[^\s@<>()"]+@[^\s@<>()"]+\.[^\s@<>()"]+$/.test(value) ? value : null;
}

/**
 * What the person found, in the letter's words. `finding` is either
 *   { kind: "face", verdict: "match" | "possible", percent: "97%" }   (a check of a photo), or
 *   { kind: "flickr", query: { kind, value }, photos: [{ photo_id, url }], total: N }   (the lookup).
 * or { kind: "told" } (the /next-steps page: the person says what a check found). Never a photo, and
 * nothing about anyone else: only the verdict and its confidence, or the person's own photo links.
 */
function findingParagraphs(finding, title, checked) {
  if (finding.kind === "told") {
    // From the /next-steps page, reached from a report: the person fills in what the check found.
    return [
      "A check of a photo of my face with photocheck, a service that compares a face with the faces in " +
        "datasets that have been disclosed, found that your dataset may hold one or more photos of me. " +
        "[Say when the check was made and what it found.]",
    ];
  }
  if (finding.kind === "flickr") {
    const photos = finding.photos ?? [];
    const total = Math.max(finding.total ?? photos.length, photos.length);
    const listed = photos.map((photo) => `  - ${photo.url || `Flickr photo ${photo.photo_id}`}`);
    const more = total > photos.length ? [`  - and ${total - photos.length} more`] : [];
    const service = "photocheck, a service that looks up the Flickr photos listed in disclosed datasets,";
    const found =
      finding.query?.kind === "photo"
        ? `On ${checked} I searched ${service} for one of my photos on Flickr. It found it in ${title}:`
        : `On ${checked} I searched ${service} for my Flickr account (${finding.query?.value ?? ""}). It found ` +
          `${total} ${total === 1 ? "photo" : "photos"} from my account in ${title}:`;
    return [found, [...listed, ...more].join("\n")];
  }
  const words = VERDICT_WORDS[finding.verdict] ?? VERDICT_WORDS.possible;
  const belief =
    finding.verdict === "match"
      ? "I therefore believe that your dataset holds one or more photos of me."
      : "Your dataset may therefore hold one or more photos of me; I ask you to check.";
  return [
    `On ${checked} I checked a photo of my face with photocheck, a service that compares a face with the ` +
      `faces in datasets that have been disclosed. Its answer for your dataset was "${words}", with an ` +
      `estimated chance of ${finding.percent} that the dataset holds a photo of me. ${belief}`,
  ];
}

function identifyParagraph(finding) {
  if (finding.kind === "flickr") {
    return "The links above identify the photos. I can confirm that the account is mine if you need me to.";
  }
  return (
    "To help you find the photos, I can give you [links to photos of me, or the account they were posted " +
    "from: delete this sentence if you cannot]. If you need a photo of me to find them, tell me, and I will " +
    "send one for that purpose only."
  );
}

function gdprLetter(kind, context) {
  const uk = kind === "uk-gdpr";
  const law = uk
    ? "the UK General Data Protection Regulation (UK GDPR)"
    : "the General Data Protection Regulation (GDPR)";
  const short = uk ? "UK GDPR" : "GDPR";
  const authority = uk ? "the Information Commissioner's Office (ICO)" : "a data protection authority";
  return {
    subject: `Request for access and erasure under Articles 15 and 17 ${short}: ${context.title}`,
    paragraphs: [
      ...context.finding,
      `I make two requests under ${law}.`,
      "1. Access (Article 15). Please confirm whether you process personal data about me, including photos of " +
        "me and anything derived from them (face crops, landmarks, face embeddings, labels). If you do, please " +
        "send me a copy of that data, and tell me the purposes of the processing; the recipients to whom the " +
        "data were disclosed, including everyone who received a copy of the dataset; how long the data will be " +
        "kept; and, under Article 15(1)(g), any available information as to their source.",
      "2. Erasure (Article 17). Please erase the photos of me and all data derived from them, from the dataset " +
        "and from any future release of it. I did not consent to this use of my photos, and I object to it " +
        "under Article 21. As the dataset was made public, Article 17(2) requires you to take reasonable steps " +
        "to inform the others who process these data that I have asked for their erasure.",
      "Under Article 12(3), please answer without undue delay and in any event within one month of receiving " +
        "this request. That period may be extended by two further months where necessary, but you must tell " +
        "me so within the first month, with the reasons. If you do not act on my request, please tell me why " +
        `within one month; I can then complain to ${authority} or go to court.`,
      context.identify,
    ],
  };
}

function ccpaLetter(context) {
  return {
    subject: `Request to delete personal information under the CCPA (Cal. Civ. Code § 1798.105): ${context.title}`,
    paragraphs: [
      "I am a California resident.",
      ...context.finding,
      "Under section 1798.105 of the California Consumer Privacy Act, as amended by the California Privacy " +
        "Rights Act, I ask you to delete the personal information you hold about me, including photos of me " +
        "and any biometric information derived from them (such as face embeddings), and to tell your service " +
        "providers and contractors to delete it too. The exception for publicly available information does not " +
        "cover biometric information collected about a consumer without the consumer's knowledge " +
        "(§ 1798.140(v)(2)).",
      "Please confirm that you received this request within 10 business days, and answer it within 45 " +
        "calendar days of receiving it (CCPA regulations, Cal. Code Regs. tit. 11, § 7021). You may extend " +
        "that once, by up to 45 more days, if you tell me within the first 45 days. If you need to verify my " +
        "request, tell me what you need.",
      context.identify,
    ],
  };
}

function plainLetter(kind, context) {
  const bipa =
    kind === "illinois"
      ? [
          "I live in Illinois. The Biometric Information Privacy Act (740 ILCS 14/15(a)) requires a private " +
            "entity in possession of biometric identifiers or biometric information to have a written policy, " +
            "available to the public, with a retention schedule and guidelines for destroying them. If it " +
            "applies to you, please send me yours.",
        ]
      : [];
  return {
    subject: `Request for access to and deletion of photos of me: ${context.title}`,
    paragraphs: [
      ...context.finding,
      "Please tell me whether your dataset holds photos of me or data derived from them (face crops, " +
        "landmarks, face embeddings, labels); send me a copy of what it holds and tell me where it came from " +
        "and to whom you gave it; and delete the photos and the data derived from them, from the dataset and " +
        "from any future release of it.",
      ...bipa,
      "Please answer within one month of receiving this letter.",
      context.identify,
    ],
  };
}

/**
 * The letter, ready to edit: { to, email, subject, text, fileName }.
 *
 *   dataset   { name, title } of the dataset as the index names it
 *   entry     the dataset's catalog entry (or null): title, year, maintainer, contact
 *   finding   what was found (see findingParagraphs)
 *   region    one of REGIONS
 *   checkedAt a Date: when the check (or the search) was answered
 *   today     a Date: the letter's date (defaults to now)
 */
export function draftLetter({ dataset, entry, finding, region, checkedAt, today = new Date() }) {
  const kind = LETTER_KINDS[region] ?? "plain";
  const title = `the ${entry?.title || dataset.title || dataset.name} dataset${entry?.year ? ` (${entry.year})` : ""}`;
  const holder = entry?.maintainer || "[the dataset's holder]";
  const email = contactEmail(entry?.contact);
  const contact = entry?.contact ? String(entry.contact) : "";
  const context = {
    title,
    finding: findingParagraphs(finding, title, longDate(checkedAt, region)),
    identify: identifyParagraph(finding),
  };
  let letter;
  if (kind === "gdpr" || kind === "uk-gdpr") letter = gdprLetter(kind, context);
  else if (kind === "ccpa") letter = ccpaLetter(context);
  else letter = plainLetter(kind, context);

  const to = contact ? `${holder} (${contact.replace(/^mailto:/i, "")})` : holder;
  const text = [
    `To: ${to}`,
    `Date: ${longDate(today, region)}`,
    `Subject: ${letter.subject}`,
    "",
    "Dear Sir or Madam,",
    "",
    `I am writing about ${title}, which you maintain.`,
    "",
    ...letter.paragraphs.flatMap((paragraph) => [paragraph, ""]),
    "Yours sincerely,",
    "",
    "[Your name]",
    "[Your email or postal address]",
    "",
  ].join("\n");
  return { to, email, subject: letter.subject, text, fileName: letterFileName(dataset.name, checkedAt) };
}
