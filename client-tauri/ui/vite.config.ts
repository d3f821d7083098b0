/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import solid from "vite-plugin-solid";

// The webview loads dist/ from Tauri's asset protocol, under a strict CSP (no inline script
// or style): relative asset paths, and nothing inlined into index.html. Solid compiles TSX
// to DOM templates and createElement calls: no inline style attributes come from it unless
// a component sets `style`, which none does (classes and CSS custom properties only).
export default defineConfig({
  plugins: [solid()],
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
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
