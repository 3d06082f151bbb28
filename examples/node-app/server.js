// A small web app on Node's standard library alone: no dependencies to install.
// It listens on $PORT, answers /health, and shows APP_VERSION so a rollback is visible.
"use strict";

const http = require("node:http");

const version = process.env.APP_VERSION || "dev";
const startedAt = new Date().toISOString();
const port = Number(process.env.PORT || 8080);

const escape = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  console.log(`${req.method} ${req.url}`);
  if (path === "/") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>node-app</title></head>` +
        `<body><h1>Hello from Node</h1><p>Version <code id="version">${escape(version)}</code>, ` +
        `started ${startedAt}, Node ${process.version}.</p></body></html>\n`,
    );
  } else if (path === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok" }));
  } else {
    res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
    res.end("not found\n");
  }
});

// Shipyard stops an app with SIGTERM: finish open requests, then leave.
process.on("SIGTERM", () => server.close(() => process.exit(0)));

server.listen(port, () => console.log(`node-app ${version} listening on port ${port}`));
