// Order statuses in the order a service goes through them, with their names. The server's
// answers carry `status_zh` / `status_en` too; these are for filters, before any order is read.

export const ORDER_STATUSES = [
  ['awaiting_payment', '待支付', 'Awaiting payment'],
  ['paid', '已支付', 'Paid'],
  ['dispatching', '派单中', 'Dispatching'],
  ['assigned', '已派单', 'Assigned'],
  ['accepted', '已接单', 'Accepted'],
  ['on_the_way', '在路上', 'On the way'],
  ['arrived', '已到达', 'Arrived'],
  ['in_service', '服务中', 'In service'],
  ['completed', '已完成', 'Completed'],
  ['reviewed', '已评价', 'Reviewed'],
  ['cancelled', '已取消', 'Cancelled'],
  ['disputed', '争议中', 'Disputed'],
] as const

export type OrderStatus = (typeof ORDER_STATUSES)[number][0]

export function statusName(status: string, locale: string): string {
  const found = ORDER_STATUSES.find((entry) => entry[0] === status)
  if (!found) return status
  return locale === 'en' ? found[2] : found[1]
}

/** Element Plus tag types by status. */
export function statusTag(status: string): 'success' | 'warning' | 'danger' | 'info' | 'primary' {
  if (status === 'completed' || status === 'reviewed') return 'success'
  if (status === 'cancelled') return 'info'
  if (status === 'disputed') return 'danger'
  if (status === 'awaiting_payment' || status === 'dispatching') return 'warning'
  return 'primary'
}
