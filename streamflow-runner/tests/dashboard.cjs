// Drives the dashboard page in headless Chromium for tests/dashboard.rs, through puppeteer-core
// and the system's browser. Talks to the test over standard input and output, a line each:
//   out: READY {"rows": [[key, value], …], "chart": {…}}   the page shows the ranking and the chart
//   in:  EXPECT key value                                  a commit is coming that sets key to value
//   out: UPDATED ms                                        the page showed it after ms
//   out: NARROW {"overflow": px, …}                        the page at 390×844
//   out: DONE {"errors": […]}                              console errors and failed requests
// Usage: node dashboard.cjs PUPPETEER_DIR CHROMIUM URL SCREENSHOT
"use strict";

const [puppeteerDir, chromium, url, screenshot] = process.argv.slice(2);
const puppeteer = require(puppeteerDir);
const readline = require("node:readline");

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => waiting.shift()?.(line));
const nextLine = () => new Promise((resolve) => waiting.push(resolve));
const say = (kind, value) => process.stdout.write(`${kind} ${typeof value === "string" ? value : JSON.stringify(value)}\n`);

async function main() {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on("console", (message) => { if (message.type() === "error") errors.push(`console: ${message.text()}`); });
    page.on("pageerror", (error) => errors.push(`page: ${error.message}`));
    page.on("requestfailed", (request) => {
      // The live ranking's connection is closed on purpose when the page goes.
      if (!request.url().includes("/top/live")) errors.push(`request: ${request.url()} ${request.failure()?.errorText}`);
    });
    page.on("response", (response) => { if (response.status() >= 400) errors.push(`response: ${response.url()} ${response.status()}`); });

    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#top tbody tr", { timeout: 15000 });
    await page.waitForFunction(() => {
      const canvas = document.querySelector("#chart canvas");
      return canvas && canvas.width > 0 && canvas.height > 0;
    }, { timeout: 15000 });
    await page.waitForFunction(() => document.querySelectorAll("#figures dd").length > 0, { timeout: 15000 });
    const shown = await page.evaluate(() => ({
      by: document.querySelector("#by").value,
      minutes: Number(document.querySelector("#minutes").value),
      rows: [...document.querySelectorAll("#top tbody tr")].map((tr) => [tr.dataset.key, Number(tr.dataset.value), tr.children[2].textContent]),
      chart: (() => {
        const canvas = document.querySelector("#chart canvas");
        // Pixels drawn: not every one is the background.
        const context = canvas.getContext("2d");
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn++;
        return { width: canvas.width, height: canvas.height, drawn, series: document.querySelectorAll(".u-legend .u-series").length };
      })(),
      figures: Object.fromEntries([...document.querySelectorAll("#figures dd")].map((dd) => [dd.dataset.figure, dd.textContent])),
    }));
    say("READY", shown);

    const [, key, value] = (await nextLine()).split(" ");
    const started = Date.now();
    await page.waitForFunction(
      (key, value) => [...document.querySelectorAll("#top tbody tr")].some((tr) => tr.dataset.key === key && tr.dataset.value === value),
      { timeout: 10000, polling: 50 },
      key,
      value,
    );
    say("UPDATED", String(Date.now() - started));
    await page.screenshot({ path: screenshot });

    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await page.reload({ waitUntil: "domcontentloaded" });
    await page.waitForSelector("#top tbody tr", { timeout: 15000 });
    await page.waitForFunction(() => document.querySelector("#chart canvas")?.width > 0, { timeout: 15000 });
    const narrow = await page.evaluate(() => {
      const visible = (selector) => {
        const box = document.querySelector(selector).getBoundingClientRect();
        return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth + 1;
      };
      return {
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        ranking: visible("#ranking"),
        chart: visible("#chart canvas"),
        health: visible("#health"),
      };
    });
    say("NARROW", narrow);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-narrow.png"), fullPage: true });
  } finally {
    await browser.close();
  }
  say("DONE", { errors });
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
