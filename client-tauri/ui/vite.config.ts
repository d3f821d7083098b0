/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The webview loads dist/ from Tauri's asset protocol, under a strict CSP (no inline script
// or style): relative asset paths, and nothing inlined into index.html.
export default defineConfig({
  base: "./",
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
    restoreMocks: true,
  },
});
