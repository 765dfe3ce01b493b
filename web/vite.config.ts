import { defineConfig } from "vite";

// Deterministic output: fixed file names (no content hashes that depend on the machine),
// no source maps, everything under dist/ which the Go package web embeds.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:7480", "/console": "http://127.0.0.1:7480" } },
});
