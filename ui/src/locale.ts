// Imported first: under the plain C locale (LANG=C, common on servers and in
// CI) WebKit reports `navigator.language` as "C", which is no language tag,
// and libraries that hand it to `Intl` (uPlot's number format) throw at load.
// Report English instead; a real tag is left alone.
function validTag(tag: string): boolean {
  try {
    return Intl.getCanonicalLocales(tag).length > 0;
  } catch {
    return false;
  }
}

if (typeof navigator !== "undefined" && !validTag(navigator.language)) {
  const languages = (navigator.languages ?? []).filter(validTag);
  Object.defineProperty(Navigator.prototype, "language", { configurable: true, get: () => languages[0] ?? "en-US" });
  Object.defineProperty(Navigator.prototype, "languages", { configurable: true, get: () => (languages.length ? languages : ["en-US"]) });
}

export {};
