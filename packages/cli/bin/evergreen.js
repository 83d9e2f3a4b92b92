#!/usr/bin/env node
// Runs the compiled CLI (`npm run build` writes ../dist; `npm start` builds first).
await import("../dist/main.js");
