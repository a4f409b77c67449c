#!/usr/bin/env node
// devrestart.js checks, for examples/server/browser_test.go, that the demo
// page in dev mode survives a restart of the demo with another secret: the
// server refuses the page's token (token_invalid), the page fetches a new
// dev token and connects again, and the new token works for the HTTP API.
//
// Usage: node devrestart.js URL. It prints "connected" once the page is
// connected as alice; the test then restarts the demo behind URL. Exits 0
// when the page is connected again with a new token, 1 otherwise.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const testdata = process.env.HERALD_TESTDATA || path.resolve(__dirname, '../../../testdata');
const { chromium } = createRequire(path.join(testdata, 'package.json'))('playwright-core');

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 40_000;
const consoleLines = [];

async function run(url) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (msg) => consoleLines.push(`console.${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => consoleLines.push(`uncaught: ${err.message}`));
    await page.goto(url);
    await page.fill('#user', 'alice');
    await page.click('#connect');
    await page.waitForSelector('#status[data-state="connected"]:text("connected as alice")');
    const before = await page.evaluate('token');
    console.log('connected');

    // The test restarts the demo now: the socket drops, reconnects, and its
    // token is refused by the new secret.
    await page.waitForSelector('#status:not([data-state="connected"])');
    await page.waitForSelector('#status[data-state="connected"]:text("connected as alice")');
    const after = await page.evaluate('token');
    if (after === before) throw new Error('connected again with the old token: the demo did not restart with a new secret');
    console.log('connected again with a new dev token');

    await page.fill('#steps', '1');
    await page.fill('#delay', '10');
    await page.click('#start-job');
    await page.waitForSelector('.job[data-state="completed"]');
    console.log('a job started with the new token completed');
  } finally {
    await browser.close();
  }
}

async function main() {
  const timer = setTimeout(() => {
    console.error(`devrestart.js: timed out after ${TOTAL_TIMEOUT_MS} ms\n${consoleLines.join('\n')}`);
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  try {
    await run(process.argv[2]);
  } catch (err) {
    console.error(`devrestart.js: ${err.stack || err}\npage console:\n${consoleLines.join('\n')}`);
    process.exit(1);
  }
  clearTimeout(timer);
}

main();
