import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { log, openStore } from '../repos/index.js';
import { commitRulesInForce, readRuleSet } from '../stages/rulesVersion.js';
import { tmpDir } from './helpers/tmp.js';

test('rules are versioned into the rules repo; a broken folder keeps the last good commit in force', async () => {
  const dir = tmpDir();
  const store = openStore(path.join(dir, 'data'));
  const rules = path.join(dir, 'rules');
  mkdirSync(path.join(rules, 'users'), { recursive: true });
  writeFileSync(path.join(rules, 'global.yaml'), 'rules:\n  - { id: 100, name: animals, unsafe: [cat], minScore: 0.8 }\n');
  writeFileSync(path.join(rules, 'users', 'alice.yaml'), 'user: alice\nrules: [100]\n');

  const first = await commitRulesInForce(store, rules);
  assert.deepEqual(first.errors, []);
  assert.ok(first.rulesCommit);
  const again = await commitRulesInForce(store, rules);
  assert.equal(again.rulesCommit, first.rulesCommit, 'unchanged rules make no new commit');

  writeFileSync(path.join(rules, 'users', 'alice.yaml'), 'user: alice\nrules: [100]\ninclude: [{ class: dog, minScore: "high" }]\n');
  const broken = await commitRulesInForce(store, rules);
  assert.equal(broken.rulesCommit, first.rulesCommit, 'the last good rules stay in force');
  assert.equal(broken.rulesHash, first.rulesHash);
  assert.match(broken.errors.join('\n'), /alice\.yaml.*include\[0\]\.minScore/);
  assert.equal((await log(store, 'rules')).length, 1);

  writeFileSync(path.join(rules, 'users', 'alice.yaml'), 'user: alice\nrules: [100]\ninclude: [{ class: dog, minScore: 0.6 }]\n');
  const fixed = await commitRulesInForce(store, rules);
  assert.notEqual(fixed.rulesCommit, first.rulesCommit);
  const set = await readRuleSet(store, fixed.rulesCommit!);
  assert.equal(set?.users.alice?.include[0]?.class, 'dog');
  const history = await log(store, 'rules');
  assert.deepEqual(history.map((c) => c.commit), [fixed.rulesCommit, first.rulesCommit]);
});
