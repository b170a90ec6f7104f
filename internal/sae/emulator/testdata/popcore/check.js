'use strict';
// Independent-client check: @alicloud/pop-core 1.8.0 signs ROA requests its
// own way (a nonce, no Content-Type, no x-acs-action, key= for empty values).
// Prints one JSON line per step; the Go test asserts on them.
const ROAClient = require('@alicloud/pop-core').ROAClient;

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    throw new Error(`missing env ${k}`);
  }
  return v;
};

const endpoint = env('SAE_EMULATOR_URL');
const appId = env('SAE_APP_ID');
const instanceId = env('SAE_INSTANCE_ID');

function client(accessKeyId, accessKeySecret, securityToken) {
  return new ROAClient({ accessKeyId, accessKeySecret, securityToken, endpoint, apiVersion: '2019-05-06' });
}

async function step(name, fn) {
  try {
    const res = await fn();
    console.log(JSON.stringify({ step: name, ok: true, code: res.Code, success: res.Success, data: res.Data }));
  } catch (err) {
    console.log(JSON.stringify({ step: name, ok: false, code: err.code || '', status: err.statusCode || 0, message: err.message }));
  }
}

(async () => {
  const good = client(env('SAE_AK'), env('SAE_SECRET'));
  await step('restart', () => good.put('/pop/v1/sam/app/restartInstances', { AppId: appId, InstanceIds: instanceId }, ''));
  await step('status', () => good.get('/pop/v1/sam/app/describeApplicationStatus', { AppId: appId }));
  await step('list_empty_key', () => good.get('/pop/v1/sam/changeorder/ListChangeOrders', { AppId: appId, Key: '' }));
  const sts = client(env('SAE_STS_AK'), env('SAE_STS_SECRET'), env('SAE_STS_TOKEN'));
  await step('sts_status', () => sts.get('/pop/v1/sam/app/describeApplicationStatus', { AppId: appId }));
  const bad = client(env('SAE_AK'), 'wrong-secret');
  await step('wrong_secret', () => bad.get('/pop/v1/sam/app/describeApplicationStatus', { AppId: appId }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
