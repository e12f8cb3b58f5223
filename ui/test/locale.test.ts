describe("the C locale", () => {
  it("an invalid navigator.language is replaced by English before other modules load", async () => {
    const desc = Object.getOwnPropertyDescriptor(Navigator.prototype, "language");
    Object.defineProperty(Navigator.prototype, "language", { configurable: true, get: () => "C" });
    Object.defineProperty(Navigator.prototype, "languages", { configurable: true, get: () => ["C"] });
    await import("../src/locale");
    expect(navigator.language).toBe("en-US");
    expect(navigator.languages).toEqual(["en-US"]);
    expect(() => new Intl.NumberFormat(navigator.language)).not.toThrow();
    if (desc) Object.defineProperty(Navigator.prototype, "language", desc);
  });
});
