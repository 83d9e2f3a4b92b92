import { chromium } from "playwright-core";
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
page.on("console", (m) => console.log("console:", m.text()));
page.on("pageerror", (e) => console.log("pageerror:", e.message));
page.on("requestfailed", (r) => console.log("failed:", r.url(), r.failure()?.errorText));
await page.goto(process.argv[2]!);
await page.waitForTimeout(3000);
console.log(
  await page
    .locator("body")
    .innerHTML()
    .then((h) => h.slice(0, 300)),
);
await browser.close();
