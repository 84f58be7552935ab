import { describe, expect, it } from 'vitest'
import { parseEvents } from './live'

describe('the live channel parser', () => {
  it('reads complete records and keeps a partial one for later', () => {
    const { events, rest } = parseEvents(
      'id: 10-5\nevent: OrderAccepted\ndata: {"order_id":"a"}\n\n: keep-alive\n\nid: 10-6\ndata: {"order',
    )
    expect(events).toEqual([{ id: '10-5', data: '{"order_id":"a"}' }])
    expect(rest).toBe('id: 10-6\ndata: {"order')
    const next = parseEvents(rest + '_id":"b"}\r\n\r\n')
    expect(next.events).toEqual([{ id: '10-6', data: '{"order_id":"b"}' }])
    expect(next.rest).toBe('')
  })

  it("joins a record's data lines", () => {
    expect(parseEvents('data: a\ndata: b\n\n').events).toEqual([{ id: undefined, data: 'a\nb' }])
  })
})
