#!/usr/bin/env node
// jobreload.js checks, for examples/server/browser_test.go, that the demo
// page gets its job bars back: after a reload in the middle of a job (the
// server sends the job's latest state when the page connects), in a second
// tab opened mid-job, a job that completed while the user was offline (once:
// not after the next reload), and, when the demo restarts without its job
// state, that the page says the job was lost instead of showing it running
// forever.
//
// Usage: node jobreload.js URL. It prints "restart" once the reload part
// passed; the test then restarts the demo behind URL. Exits 0 when both
// parts passed, 1 otherwise.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const testdata = process.env.HERALD_TESTDATA || path.resolve(__dirname, '../../../testdata');
const { chromium } = createRequire(path.join(testdata, 'package.json'))('playwright-core');

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 55_000;
const consoleLines = [];

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function connect(page, user) {
  await page.fill('#user', user);
  await page.click('#connect');
  await page.waitForSelector(`#status[data-state="connected"]:text("connected as ${user}")`);
}

// watchBars records every progress value the job bars take.
async function watchBars(page) {
  await page.evaluate(() => {
    window.progressSeen = {};
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of [r.target, ...r.addedNodes]) {
          if (!(node instanceof Element)) continue;
          for (const bar of node.matches('.bar') ? [node] : node.querySelectorAll('.bar')) {
            const id = bar.closest('.job').dataset.jobId;
            (window.progressSeen[id] ||= []).push(Number(bar.dataset.progress));
          }
        }
      }
    }).observe(document.querySelector('#jobs'), { subtree: true, childList: true, attributeFilter: ['data-progress'] });
  });
}

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
    await connect(page, 'alice');

    // A slow job: ten steps, one every 2.5 s.
    await page.fill('#steps', '10');
    await page.fill('#delay', '2500');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/jobs') && r.request().method() === 'POST'),
      page.click('#start-job'),
    ]);
    const { jobId } = await res.json();
    const row = `.job[data-job-id="${jobId}"]`;
    await page.waitForSelector(`${row} .bar[data-progress="10"]`);
    console.log(`job ${jobId} at 10%`);

    // Reload mid-job: the new page knows nothing until it connects, then
    // the server tells it where the job stands, before the next step.
    await page.reload();
    check(await page.$(row) === null, 'the reloaded page shows the job before connecting');
    await watchBars(page);
    await connect(page, 'alice');
    await page.waitForSelector(`${row}[data-state="running"] .bar[data-progress="10"]`);
    const seen = await page.evaluate((id) => window.progressSeen[id] || [], jobId);
    check(seen.find((p) => p > 0) === 10, `after the reload the bar first showed ${JSON.stringify(seen)}, want 10 (the job's state) before any later step`);
    console.log(`bar restored at 10% after the reload (values ${JSON.stringify(seen)})`);

    // A second tab opened mid-job shows the bar too.
    const tab2 = await browser.newPage();
    tab2.setDefaultTimeout(15_000);
    await tab2.goto(url);
    await connect(tab2, 'alice');
    await tab2.waitForSelector(`${row}[data-state="running"] .bar[data-progress]`);
    console.log('a second tab opened mid-job shows the bar');

    // alice goes offline while a short job finishes: her next page is told
    // it completed, once.
    await tab2.fill('#steps', '1');
    await tab2.fill('#delay', '1500');
    const [res2] = await Promise.all([
      tab2.waitForResponse((r) => r.url().endsWith('/api/v1/jobs') && r.request().method() === 'POST'),
      tab2.click('#start-job'),
    ]);
    const short = (await res2.json()).jobId;
    const shortRow = `.job[data-job-id="${short}"]`;
    await page.close();
    await tab2.close();
    await new Promise((resolve) => setTimeout(resolve, 3000)); // the job completes meanwhile
    const back = await browser.newPage();
    back.setDefaultTimeout(15_000);
    back.on('console', (msg) => consoleLines.push(`console.${msg.type()}: ${msg.text()}`));
    await back.goto(url);
    await connect(back, 'alice');
    await back.waitForSelector(`${shortRow}[data-state="completed"]`);
    await back.waitForSelector(`${row}[data-state="running"]`);
    console.log(`job ${short}, completed while alice was offline, shown once she is back`);
    await back.reload();
    await connect(back, 'alice');
    await back.waitForSelector(`${row}[data-state="running"]`);
    check(await back.$(shortRow) === null, `job ${short} was shown again after a reload`);
    console.log('not repeated after a reload');

    console.log('restart');
    // The demo restarts without its job state: the page reconnects (with a
    // new dev token) and marks the job as lost rather than running.
    await back.waitForSelector(`${row}[data-state="unknown"]`, { timeout: 30_000 });
    console.log('after the restart the job is shown as lost');
  } finally {
    await browser.close();
  }
}

async function main() {
  const timer = setTimeout(() => {
    console.error(`jobreload.js: timed out after ${TOTAL_TIMEOUT_MS} ms\n${consoleLines.join('\n')}`);
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  try {
    await run(process.argv[2]);
  } catch (err) {
    console.error(`jobreload.js: ${err.stack || err}\npage console:\n${consoleLines.join('\n')}`);
    process.exit(1);
  }
  clearTimeout(timer);
}

main();
