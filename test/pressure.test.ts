import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DetectPressure } from '../stages/pressure.js';

/** A detect that runs until `finish()` is called. */
function detect(p: DetectPressure): { finish: () => void; done: Promise<void> } {
  let finish!: () => void;
  const done = p.detecting(() => new Promise<void>((r) => (finish = r)));
  return { finish, done };
}

test('a validate starts at once while a detect slot is free', async () => {
  const p = new DetectPressure(2, 5_000, 20);
  const a = detect(p);
  assert.equal(p.inFlight, 1);
  assert.ok((await p.roomForValidate()) < 50);
  a.finish();
  await a.done;
  assert.equal(p.inFlight, 0);
});

test('a validate waits while detects fill every slot, and goes once one ends and no other takes its slot', async () => {
  const p = new DetectPressure(2, 5_000, 50);
  const a = detect(p);
  const b = detect(p);
  let went = false;
  const waited = p.roomForValidate().then((ms) => ((went = true), ms));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(went, false, 'still waiting while both slots run');
  // A queued detect takes the freed slot within the settle time: the validate keeps waiting.
  a.finish();
  await a.done;
  const c = detect(p);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(went, false, 'a queued detect took the slot first');
  b.finish();
  await b.done;
  assert.ok((await waited) >= 300, 'went after the second detect ended');
  assert.equal(went, true);
  c.finish();
  await c.done;
});

test('a validate waits at most maxWaitMs, and stops waiting when its activity is cancelled', async () => {
  const p = new DetectPressure(1, 200, 20);
  const a = detect(p);
  const t0 = Date.now();
  const ms = await p.roomForValidate();
  assert.ok(ms >= 190 && Date.now() - t0 < 1_000, `waited ${ms} ms`);
  const q = new DetectPressure(1, 60_000, 20);
  const b = detect(q);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  assert.ok((await q.roomForValidate(abort.signal)) < 1_000, 'cancelled: stopped waiting');
  a.finish();
  b.finish();
  await Promise.all([a.done, b.done]);
});

test('a detect that fails still frees its slot', async () => {
  const p = new DetectPressure(1, 5_000, 10);
  await assert.rejects(p.detecting(async () => {
    throw new Error('model broke');
  }), /model broke/);
  assert.equal(p.inFlight, 0);
  assert.ok((await p.roomForValidate()) < 50);
});
