// The console's build: two pages (index.html; consult.html, the consultation join page), hashed assets under
// /assets/, nothing fetched from elsewhere at run time. Swagger UI's files are copied beside it so that /docs works
// offline too.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vue from "@vitejs/plugin-vue";
import Components from "unplugin-vue-components/vite";
import { ElementPlusResolver } from "unplugin-vue-components/resolvers";
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
  // Element Plus components are imported where the templates use them (with their CSS), not the whole library:
  // the entry parses in a fraction of the time, which is most of the console's first second.
  plugins: [vue(), Components({ resolvers: [ElementPlusResolver({ importStyle: "css" })], dts: false }), swaggerUi()],
  build: {
    outDir: "dist",
    // The console, and the consultation join page (served at /consult/{id} with janus.js from npm).
    rollupOptions: { input: { index: resolve(here, "index.html"), consult: resolve(here, "consult.html") } },
    emptyOutDir: true,
    chunkSizeWarningLimit: 2048,
    reportCompressedSize: false,
  },
});
