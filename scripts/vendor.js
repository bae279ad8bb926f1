#!/usr/bin/env node
// Copies the browser libraries' built files from node_modules/ (installed by `npm ci` from
// package-lock.json) into static/vendor/, where Django's static files serve them. No bundler:
// each library ships a ready browser build, and pages load it with a plain <script> tag.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
// package -> the files of it the console loads (paths inside the package), plus its licence.
const FILES = {
  echarts: ["dist/echarts.min.js", "LICENSE", "NOTICE"],
  drawflow: ["dist/drawflow.min.js", "dist/drawflow.min.css", "LICENSE"],
};

const target = path.join(root, "static", "vendor");
fs.rmSync(target, { recursive: true, force: true });
for (const [pkg, files] of Object.entries(FILES)) {
  const source = path.join(root, "node_modules", pkg);
  const version = require(path.join(source, "package.json")).version;
  fs.mkdirSync(path.join(target, pkg), { recursive: true });
  for (const file of files) {
    fs.copyFileSync(path.join(source, file), path.join(target, pkg, path.basename(file)));
  }
  console.log("static/vendor/" + pkg + "/ <- " + pkg + " " + version);
}
