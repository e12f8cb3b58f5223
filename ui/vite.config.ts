import { defineConfig } from "vite";

// Tauri serves `dist/` from inside the binary; the dev server is for
// `cargo tauri dev`. Relative asset paths, no inline scripts (strict CSP).
export default defineConfig({
  base: "./",
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["test/**/*.test.ts"],
  },
});
