// The strict Responses API mock is only worth its name if it refuses what the real API
// refuses: unknown fields, wrong types, limits below the minimum, and streams out of order.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkResponsesStream, parseResponsesSse, startResponsesMock, streamEvents, type ResponsesMock } from '../../support/responses-mock.ts';

let mock: ResponsesMock;
before(async () => {
  mock = await startResponsesMock();
});
after(async () => {
  await mock.close();
});

async function post(body: object): Promise<{ status: number; text: string }> {
  const res = await fetch(`${mock.url}/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

describe('the strict Responses mock', () => {
  const refusals: Array<[string, object, RegExp]> = [
    ['an unknown top-level field', { model: 'm', input: 'hi', messages: [] }, /unknown_parameter.*messages|messages.*unknown_parameter/],
    ['a Chat field (max_tokens)', { model: 'm', input: 'hi', max_tokens: 10 }, /max_tokens/],
    ['an unknown field in an input item', { model: 'm', input: [{ role: 'user', content: 'hi', name: 'x' }] }, /input\[0\]\.name/],
    ['a Chat-shaped tool', { model: 'm', input: 'hi', tools: [{ type: 'function', function: { name: 'f' } }] }, /tools\[0\]\.function/],
    ['a wrong type', { model: 'm', input: 'hi', temperature: 'hot' }, /temperature/],
    ['max_output_tokens below 16', { model: 'm', input: 'hi', max_output_tokens: 10 }, /integer_below_min_value/],
    ['a Chat content part', { model: 'm', input: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }, /input\[0\]\.content\[0\]\.type/],
  ];
  for (const [what, body, message] of refusals) {
    test(`refuses ${what} with a 400 in the API's error shape`, async () => {
      const { status, text } = await post(body);
      assert.equal(status, 400);
      const error = (JSON.parse(text) as { error: { type: string } }).error;
      assert.equal(error.type, 'invalid_request_error');
      assert.match(text, message);
    });
  }

  test('streams in the real order, which checkResponsesStream accepts', async () => {
    for (const model of ['ok', 'fault:tool']) {
      const { status, text } = await post({ model, input: 'hi', stream: true, tools: [{ type: 'function', name: 'f', parameters: null, strict: false }] });
      assert.equal(status, 200);
      checkResponsesStream(parseResponsesSse(text));
    }
  });

  test('checkResponsesStream refuses streams the real API never sends', () => {
    const good = streamEvents('m', {}, { text: 'a b' });
    const renumber = (list: Array<Record<string, unknown>>) => list.map((e, i) => ({ ...e, sequence_number: i }));
    const swapped = renumber([good[0]!, good[1]!, good[3]!, good[2]!, ...good.slice(4)]);
    assert.throws(() => checkResponsesStream(swapped), /content part of an item that is not an open message/);
    assert.throws(() => checkResponsesStream(good.map((e) => ({ ...e, sequence_number: 0 }))), /sequence_number/);
    const itemNeverClosed = renumber(good.filter((e) => e['type'] !== 'response.output_item.done'));
    assert.throws(() => checkResponsesStream(itemNeverClosed), /still open/);
    assert.throws(() => checkResponsesStream(good.slice(0, -1)), /no terminal event/);
    assert.throws(() => checkResponsesStream(renumber([good[1]!, good[0]!, ...good.slice(2)])), /first event must be response.created/);
  });
});
