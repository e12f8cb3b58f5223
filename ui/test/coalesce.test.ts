import { vi } from "vitest";
import { coalesce } from "../src/dom";

describe("coalesce", () => {
  it("folds calls within the wait into one, and runs again after it", () => {
    vi.useFakeTimers();
    const f = vi.fn();
    const soon = coalesce(f, 150);
    soon();
    soon();
    soon();
    expect(f).not.toHaveBeenCalled();
    vi.advanceTimersByTime(150);
    expect(f).toHaveBeenCalledTimes(1);
    soon();
    vi.advanceTimersByTime(150);
    expect(f).toHaveBeenCalledTimes(2);
    vi.useRealTimers();
  });
});
