// What the screens that follow one order share, the customer's and the worker's alike.
import { api, unwrap } from '@/api/client'

/**
 * The order and its tracking (null when that cannot be read), both as of the live event at
 * `seen` when one prompted the read, so that neither answers from before it.
 */
export function readOrder(orderId: string, seen?: string) {
  const query = { min_position: seen }
  return Promise.all([
    api.GET('/api/v1/orders/{order_id}', { params: { path: { order_id: orderId }, query } }).then(unwrap),
    api.GET('/api/v1/orders/{order_id}/tracking', { params: { path: { order_id: orderId }, query } }).then(unwrap).catch(() => null),
  ])
}
