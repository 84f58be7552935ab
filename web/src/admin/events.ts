// Names of the events an admin reads in timelines and the audit trail. An event type not listed
// shows its own name.

const NAMES: Record<string, [string, string]> = {
  OrderPlaced: ['下单', 'Order placed'],
  PaymentRequested: ['发起支付', 'Payment requested'],
  PaymentRecorded: ['支付成功', 'Payment recorded'],
  DispatchOpened: ['开始派单', 'Dispatch opened'],
  DispatchStageEntered: ['进入派单阶段', 'Dispatch stage entered'],
  WorkerAssigned: ['已派给服务人员', 'Worker assigned'],
  AssignmentExpired: ['派单超时', 'Assignment expired'],
  AssignmentWithdrawn: ['撤回派单', 'Assignment withdrawn'],
  WorkerLocationReported: ['上报位置', 'Location reported'],
  AssignmentDeclined: ['服务人员拒单', 'Assignment declined'],
  OrderAccepted: ['服务人员接单', 'Order accepted'],
  WorkerDeparted: ['出发', 'Worker departed'],
  WorkerArrived: ['到达', 'Worker arrived'],
  ServiceStarted: ['开始服务', 'Service started'],
  ServiceFinished: ['服务完成', 'Service finished'],
  OrderReviewed: ['用户评价', 'Order reviewed'],
  ReviewReplied: ['服务人员回复评价', 'Review replied'],
  OrderRescheduled: ['改期', 'Order rescheduled'],
  AddressChanged: ['修改地址', 'Address changed'],
  PriceAdjusted: ['调整价格', 'Price adjusted'],
  ReviewHidden: ['隐藏评价', 'Review hidden'],
  OrderCancelled: ['取消订单', 'Order cancelled'],
  OrderDisputed: ['发起争议', 'Order disputed'],
  DisputeResolved: ['争议已处理', 'Dispute resolved'],
  PaymentCreated: ['创建支付', 'Payment created'],
  PaymentCaptured: ['支付入账', 'Payment captured'],
  RefundIssued: ['发起退款', 'Refund issued'],
  RefundCompleted: ['退款完成', 'Refund completed'],
  WorkerRegistered: ['服务人员注册', 'Worker registered'],
  WorkerApproved: ['审核通过', 'Worker approved'],
  WorkerRejected: ['审核拒绝', 'Worker rejected'],
  WorkerSuspended: ['停用', 'Suspended'],
  WorkerReinstated: ['恢复', 'Reinstated'],
  CustomerRegistered: ['用户注册', 'Customer registered'],
  CustomerSuspended: ['停用用户', 'Customer suspended'],
  CustomerReinstated: ['恢复用户', 'Customer reinstated'],
  WithdrawalRequested: ['申请提现', 'Withdrawal requested'],
  WithdrawalApproved: ['提现已批准', 'Withdrawal approved'],
  WithdrawalRejected: ['提现被拒绝', 'Withdrawal rejected'],
  IncomeRecorded: ['记入收入', 'Income recorded'],
}

export function eventName(eventType: string, locale: string): string {
  const names = NAMES[eventType]
  if (!names) return eventType
  return locale === 'en' ? names[1] : names[0]
}

const ROLES: Record<string, [string, string]> = {
  customer: ['用户', 'customer'],
  worker: ['服务人员', 'worker'],
  admin: ['管理员', 'admin'],
  analyst: ['数据分析师', 'analyst'],
  system: ['系统', 'system'],
}

/** Who acted, by role, in the page's language. */
export function roleName(role: string | null | undefined, locale: string): string {
  const names = ROLES[role ?? 'system'] ?? [role ?? '', role ?? '']
  return locale === 'en' ? names[1] : names[0]
}
