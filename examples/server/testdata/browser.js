#!/usr/bin/env node
// browser.js drives herald's demo page in headless Chromium, for
// examples/server/browser_test.go. It uses playwright-core from the module's
// testdata/node_modules (HERALD_TESTDATA, default ../../../testdata) and the
// Chromium at HERALD_CHROMIUM (default /usr/bin/chromium).
//
// Usage: node browser.js URL SCREENSHOT.png
//
// As alice it connects, starts a job and watches its bar go to 100 and
// "completed", starts a failing job and sees "failed", runs an analysis, and
// sees bob come online from a second browser context. Then it writes a
// screenshot and exits 0. Any failure prints what went wrong and the page's
// console to stderr and exits 1.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const testdata = process.env.HERALD_TESTDATA || path.resolve(__dirname, '../../../testdata');
const { chromium } = createRequire(path.join(testdata, 'package.json'))('playwright-core');

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 45_000;
const STEP_TIMEOUT_MS = 10_000;
const CHROMIUM_ARGS = [
  '--no-sandbox', // needed as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const consoleLines = [];

function check(ok, message) {
  if (!ok) throw new Error(message);
}

// openPage opens the demo in a fresh context and records its console.
async function openPage(browser, url, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (msg) => consoleLines.push(`[${name}] console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`[${name}] uncaught: ${err.message}`));
  await page.goto(url);
  check(await page.evaluate(() => typeof io === 'function'), `${name}: socket.io-client did not load from /vendor/socket.io.min.js`);
  return { context, page };
}

async function connectAs(page, user) {
  await page.fill('#user', user);
  await page.click('#connect');
  await page.waitForSelector(`#status[data-state="connected"]:text("connected as ${user}")`);
  await page.waitForSelector(`#online li[data-user-id="${user}"]`);
}

// startJob starts a job from the form and returns its id.
async function startJob(page, { steps, delayMs, fail }) {
  await page.fill('#steps', String(steps));
  await page.fill('#delay', String(delayMs));
  await page.setChecked('#fail', fail);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/jobs') && r.request().method() === 'POST'),
    page.click('#start-job'),
  ]);
  check(res.status() === 202, `POST /api/v1/jobs answered ${res.status()}: ${await res.text()}`);
  const { jobId } = await res.json();
  check(typeof jobId === 'string' && jobId !== '', 'POST /api/v1/jobs returned no jobId');
  return jobId;
}

async function run(url, screenshot) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const alice = await openPage(browser, url, 'alice');
    const page = alice.page;
    await connectAs(page, 'alice');
    console.log(`connected as alice, ${await page.textContent('#transport')}`);

    // Record every value the bars take, to see progress arrive live.
    await page.evaluate(() => {
      window.progressSeen = {};
      new MutationObserver((records) => {
        for (const r of records) {
          const id = r.target.closest('.job').dataset.jobId;
          (window.progressSeen[id] ||= []).push(Number(r.target.dataset.progress));
        }
      }).observe(document.querySelector('#jobs'), { subtree: true, attributeFilter: ['data-progress'] });
    });

    // The API's validation error is shown to the visitor.
    await page.fill('#steps', '0');
    await page.click('#start-job');
    await page.waitForSelector('#job-error:has-text("steps")');
    console.log(`error shown: ${await page.textContent('#job-error')}`);

    const okJob = await startJob(page, { steps: 4, delayMs: 50, fail: false });
    const okRow = `.job[data-job-id="${okJob}"]`;
    await page.waitForSelector(`${okRow} .bar[data-progress="100"][aria-valuenow="100"]`);
    await page.waitForSelector(`${okRow}[data-state="completed"] .state:text-is("completed")`);
    const seen = await page.evaluate((id) => window.progressSeen[id] || [], okJob);
    check([25, 50, 75].every((p) => seen.includes(p)), `job ${okJob}: bar took values ${JSON.stringify(seen)}, want 25, 50, 75, 100`);
    check(seen.every((p, i) => i === 0 || p >= seen[i - 1]), `job ${okJob}: progress went backwards: ${JSON.stringify(seen)}`);
    console.log(`job ${okJob} completed, bar values ${JSON.stringify(seen)}`);

    const badJob = await startJob(page, { steps: 2, delayMs: 50, fail: true });
    const badRow = `.job[data-job-id="${badJob}"]`;
    await page.waitForSelector(`${badRow}[data-state="failed"] .state:text-is("failed")`);
    await page.waitForSelector(`${badRow} .detail:text("simulated failure")`);
    console.log(`job ${badJob} failed as asked`);

    await page.fill('#interview', 'interview-42');
    await page.click('#start-analysis');
    await page.waitForSelector('.analysis[data-interview-id="interview-42"][data-state="completed"]');
    console.log('analysis interview-42 completed');

    // Presence: alice sees bob come online.
    const bob = await openPage(browser, url, 'bob');
    await connectAs(bob.page, 'bob');
    await page.waitForSelector('#online li[data-user-id="bob"]');
    await page.waitForSelector('#online-count:has-text("2 user(s) online")');
    console.log('alice sees bob online');

    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);

    // Closing a page is seen at once on a WebSocket; a long-polling client
    // that vanishes is only noticed when its heartbeat times out (45 s).
    // Under load the upgrade can take a moment: wait for it.
    await bob.page.waitForSelector('#transport:has-text("via websocket")');
    await bob.context.close();
    await page.waitForSelector('#online li[data-user-id="bob"]', { state: 'detached' });
    console.log('alice sees bob go offline');
    await alice.context.close();
  } finally {
    await browser.close();
  }
}

async function main() {
  const [url, screenshot] = process.argv.slice(2);
  if (!url || !screenshot) {
    console.error('usage: node browser.js URL SCREENSHOT.png');
    process.exit(2);
  }
  const timer = setTimeout(() => {
    console.error(`browser.js: timed out after ${TOTAL_TIMEOUT_MS} ms`);
    console.error(consoleLines.join('\n'));
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  try {
    await run(url, screenshot);
  } catch (err) {
    console.error(`browser.js: ${err.stack || err}`);
    console.error(`page console (${consoleLines.length} lines):\n${consoleLines.join('\n')}`);
    process.exit(1);
  }
  clearTimeout(timer);
}

main();
