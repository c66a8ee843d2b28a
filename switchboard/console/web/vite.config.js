// The console's build: one entry (index.html), hashed assets under /assets/, nothing fetched from elsewhere at run
// time. Swagger UI's files are copied beside it so that /docs works offline too.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

const here = dirname(fileURLToPath(import.meta.url));

function swaggerUi() {
  return {
    name: "swagger-ui-offline",
    closeBundle() {
      const from = resolve(here, "node_modules/swagger-ui-dist");
      const to = resolve(here, "dist/docs");
      mkdirSync(to, { recursive: true });
      for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) copyFileSync(resolve(from, name), resolve(to, name));
    },
  };
}

export default defineConfig({
  plugins: [vue(), swaggerUi()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2048,
    reportCompressedSize: false,
  },
});
