//! The message table: every text the platform shows, by its stable code, in Simplified Chinese
//! and English. `{name}` is filled from the text's values. A code, once published, keeps its
//! meaning; a new meaning gets a new code.

use super::Entry;

macro_rules! table {
    ($($code:literal => $zh:literal, $en:literal;)*) => {
        /// The platform's texts, by code.
        pub static TABLE: &[Entry] = &[$(Entry { code: $code, zh: $zh, en: $en }),*];
    };
}

table! {
    // Problems' titles, by status.
    "title.400" => "请求格式错误", "Bad request";
    "title.401" => "未登录", "Unauthenticated";
    "title.403" => "无权操作", "Forbidden";
    "title.404" => "未找到", "Not found";
    "title.405" => "方法不允许", "Method not allowed";
    "title.409" => "冲突", "Conflict";
    "title.410" => "已过期", "Gone";
    "title.413" => "请求体过大", "Payload too large";
    "title.415" => "不支持的媒体类型", "Unsupported media type";
    "title.422" => "输入无效", "Invalid input";
    "title.429" => "请求过于频繁", "Too many requests";
    "title.503" => "服务不可用", "Service unavailable";
    "title.500" => "服务器错误", "Server error";
    // What the HTTP edge itself refuses.
    "unauthenticated" => "请先登录", "authentication required";
    "bad-credentials" => "登录名或密码错误", "wrong login or password";
    "forbidden" => "您的角色无权执行此操作", "your role may not do this";
    "method-not-allowed" => "该路径不支持此方法", "method not allowed on this path";
    "concurrent-modification" => "该订单刚被其他操作修改，请刷新后重试", "the resource was changed by another request first; nothing was written, reload and retry";
    "idempotency-in-progress" => "相同幂等键的请求仍在处理中", "a request with this Idempotency-Key is still in progress";
    "locked-out" => "尝试次数过多，请 {seconds} 秒后再试", "too many failed attempts; try again in {seconds} seconds";
    "resume-too-old" => "续传位置已过期，请刷新后重新订阅（不带 Last-Event-ID）", "that resume point is older than the last hour; reload, then follow without Last-Event-ID";
    "payload-too-large" => "请求体过大", "request body too large";
    "unsupported-media-type" => "请求体必须是 JSON", "the body must be application/json";
    "invalid-field" => "字段 {field} 无效：{detail}", "invalid field {field}: {detail}";
    "bad-code" => "验证码错误或已过期，请重新获取", "the code is wrong or has expired; request a new one";
    "idempotency-key-reused" => "幂等键已用于另一个请求", "this Idempotency-Key was used for a different request";
    "catching-up" => "数据正在同步，请稍后重试", "the views are still catching up with that write; try again shortly";
    "unavailable" => "服务暂不可用", "service temporarily unavailable";
    "warehouse-not-loaded" => "数据仓库尚未建立，请先刷新", "the warehouse has not been loaded yet: refresh it first";
    "internal" => "服务器内部错误", "internal server error";
    "not-found" => "{what}不存在", "no such {what}";
    // App presence.
    "presence.someone-else" => "这条记录属于另一个人", "this record belongs to someone else";
    "presence.bad-version" => "版本号须为 1 到 {MAX_VERSION} 个可见字符", "an app version is 1 to {MAX_VERSION} visible characters";
    // Commission rates.
    "commission.out-of-range" => "佣金比例须在 0 到 {MAX_BP} 个基点之间", "a commission must be 0 to {MAX_BP} basis points";
    "commission.reason-required" => "请填写调整原因", "a reason is required";
    // Customers.
    "customer.not-found" => "客户不存在", "no such customer";
    "customer.already-registered" => "客户已注册", "the customer is already registered";
    "customer.no-such-address" => "地址不存在", "no such address";
    "customer.address-exists" => "地址已存在", "the address already exists";
    "customer.too-many-addresses" => "最多保存 {MAX_ADDRESSES} 个地址", "at most {MAX_ADDRESSES} addresses can be saved";
    "customer.suspended" => "客户已停用", "the customer is suspended";
    "customer.not-suspended" => "客户未停用", "the customer is not suspended";
    "customer.bad-groups" => "分组最多 {max} 个，每个 1–20 字", "at most {max} groups of 1 to 20 characters";
    "customer.too-many-blocked" => "最多屏蔽 {MAX_BLOCKED_WORKERS} 位服务人员", "at most {MAX_BLOCKED_WORKERS} workers can be blocked";
    // Interviews.
    "interview.not-found" => "面试不存在", "no such interview";
    "interview.already-exists" => "面试已存在", "the interview already exists";
    "interview.illegal-state" => "面试状态为 {0}，不能执行此操作", "not possible while the interview is {0}";
    "interview.not-participant" => "您不是这次面试的参与者", "you are not part of this interview";
    "interview.no-interview-for-service" => "该服务无需面试（保姆、月嫂、育婴师需要）", "this service has no interview (nannies, maternity nurses and infant carers do)";
    "interview.start-in-past" => "面试时间必须在将来", "the interview must start in the future";
    "interview.own-proposal" => "请等待对方回应您的提议", "the other side has to answer your proposal";
    "interview.not-the-time" => "现在不在面试时间内（开始前 {EARLY_JOIN_MINUTES} 分钟至结束）", "it is not the interview's time (from {EARLY_JOIN_MINUTES} minutes before the start to its end)";
    "interview.too-early-for-outcome" => "面试开始后才能记录结果", "the outcome comes after the interview";
    "interview.reason-required" => "请填写原因", "a reason is required";
    // Orders.
    "order.illegal-transition" => "订单{state}，不能{verb}", "cannot {verb} an order that is {state}";
    "order.not-found" => "订单不存在", "no such order";
    "order.price-out-of-range" => "单价 {price} 不在服务「{service}」的价格范围 {min}–{max} 内", "unit price {price} is outside {min}–{max} for this service";
    "order.bad-quantity" => "数量必须在 1 到 {max} 之间", "quantity must be between 1 and {max}";
    "order.bad-duration" => "服务时长必须在 {min} 到 {max} 分钟之间", "duration must be between {min} and {max} minutes";
    "order.start-in-past" => "服务开始时间必须在将来", "the service must start in the future";
    "order.total-overflow" => "订单金额溢出", "order total overflows";
    "order.amount-mismatch" => "支付金额 {paid} 与订单金额 {due} 不符", "paid {paid} but {due} is due";
    "order.worker-not-eligible" => "服务人员不可派单：{0}", "the worker cannot take this order: {0}";
    "order.not-assigned-worker" => "这不是派给您的订单", "this order is not assigned to you";
    "order.not-owner" => "这不是您的订单", "this is not your order";
    "order.bad-rating" => "评分必须在 1 到 5 之间", "ratings must be between 1 and 5";
    "order.review-window-closed" => "评价期已过", "the time to review this order has passed";
    "order.review-window-open" => "评价期尚未结束", "the review window is still open";
    "order.unknown-tag" => "未知的评价标签：{0}", "unknown review tag {0}";
    "order.already-replied" => "评价已回复过", "the review has already been answered";
    "order.already-hidden" => "评价已被隐藏", "the review is already hidden";
    "order.price-rise-after-payment" => "付款后只能降价，差额退回客户", "after payment a price can only go down, the difference refunded";
    "order.same-price" => "新价格与原价相同", "the new price is the current one";
    "order.reason-required" => "请填写原因", "a reason is required";
    "order.fee-share-not-to-worker" => "取消费分成只能给已接单的服务人员", "a cancellation fee can only be shared with the worker who accepted the order";
    "order.already-taken" => "订单已被其他服务人员接走", "the order has already been taken by another worker";
    "order.not-open-for-grab" => "订单当前不在抢单中", "the order is not open for grabbing";
    "order.already-passed" => "您已拒绝或错过此订单", "you declined or missed this order";
    "order.not-due" => "尚未到期限，不能{verb}", "the deadline to {verb} has not passed yet";
    "order.stage-backwards" => "派单阶段只能向后推进", "dispatch can only move on to a later stage";
    "order.no-preferred-worker" => "订单没有指定服务人员", "the order names no worker";
    "order.same-worker" => "新服务人员与当前服务人员相同", "the new worker is the current one";
    "order.position-required" => "请提供当前位置", "your current position is required to check in";
    "order.too-far" => "距离服务地址 {distance_m} 米，需在 {radius_m} 米内签到", "you are {distance_m} m from the address; check in within {radius_m} m";
    "order.outside-arrival-window" => "不在签到时间内（服务开始前 {early} 分钟至服务结束）", "check-in is open from {early} minutes before the start until the end of the service";
    "order.ping-too-frequent" => "位置上报过于频繁，请 {seconds} 秒后再试", "locations may be reported every {seconds} seconds";
    "order.inaccurate-fix" => "定位精度 {accuracy_m} 米，超过 {max} 米", "a fix of {accuracy_m} m is less precise than {max} m";
    // Payments.
    "payment.not-found" => "支付单不存在", "no such payment";
    "payment.already-exists" => "支付单已存在", "the payment already exists";
    "payment.illegal-state" => "支付单状态为 {0}，不能执行此操作", "not possible while the payment is {0}";
    "payment.amount-mismatch" => "金额 {got} 与支付单金额 {expected} 不符", "amount {got} does not match {expected}";
    "payment.currency" => "币种 {0} 不受支持，仅支持 CNY", "currency {0} is not accepted, only CNY";
    "payment.other-transaction" => "支付单已由另一笔交易确认", "the payment was confirmed by another transaction";
    "payment.refund-too-large" => "退款金额 {requested} 超过可退金额 {refundable}", "a refund of {requested} exceeds the {refundable} left in escrow";
    "payment.empty-refund" => "退款金额必须大于零", "a refund must be more than zero";
    "payment.no-such-refund" => "退款不存在或已完成", "no such pending refund";
    "payment.bad-commission" => "佣金比例须在 0 到 10000 个基点之间", "commission must be 0 to 10,000 basis points";
    "payment.reason-required" => "请填写原因", "a reason is required";
    "payment.share-too-large" => "服务人员分成 {share} 超过保留的费用 {fee}", "a worker's share of {share} exceeds the {fee} fee kept";
    // Values checked anywhere.
    "value.negative-amount" => "金额不能为负数", "amount must not be negative: {0}";
    "value.bad-phone" => "手机号格式不正确", "not a mainland China mobile number: {0}";
    "value.empty" => "{field}不能为空", "{field} must not be empty";
    "value.too-long" => "{field}过长（最多 {max} 字）", "{field} is longer than {max} characters";
    "value.control-character" => "{field}含有控制字符", "{field} contains a control character";
    "value.bad-id-number" => "身份证号码无效", "not a valid identity card number";
    "value.bad-dates" => "到期日须晚于发证日", "the expiry date must be after the issue date";
    "value.bad-coordinate" => "坐标超出范围", "coordinate out of range: {0}, {1}";
    "value.out-of-range" => "{field}须在 {min} 到 {max} 之间", "{field} must be between {min} and {max}";
    // Wallets.
    "wallet.insufficient-funds" => "提现金额 {requested} 超过可提现余额 {available}", "{requested} is more than the {available} available";
    "wallet.empty-withdrawal" => "提现金额必须大于零", "a withdrawal must be more than zero";
    "wallet.no-such-withdrawal" => "提现申请不存在", "no such withdrawal";
    "wallet.withdrawal-state" => "提现申请状态为 {0}，不能执行此操作", "not possible while the withdrawal is {0}";
    "wallet.not-found" => "钱包不存在", "no such wallet";
    "wallet.reason-required" => "请填写原因", "a reason is required";
    "wallet.cannot-recover" => "工人收入 {held} 不足以扣回 {requested}", "the worker's {held} does not cover the {requested} to recover";
    "wallet.account-changed" => "银行卡刚刚更换，请重新提交", "the bank account was just changed; ask again";
    // Withdrawal risk rules.
    "withdrawal.no-bank-account" => "请先绑定银行卡", "add a bank account first";
    "withdrawal.below-minimum" => "单笔提现至少 {0}", "at least {0} per withdrawal";
    "withdrawal.over-daily-maximum" => "24 小时内提现合计不能超过 {0}", "at most {0} in any 24 hours";
    "withdrawal.too-frequent" => "24 小时内最多提现 {0} 次", "at most {0} withdrawals in any 24 hours";
    "withdrawal.name-mismatch" => "开户名与实名认证姓名不一致", "the account holder is not the verified worker";
    "withdrawal.account-too-new" => "银行卡绑定未满 {0} 小时", "the bank account was added less than {0} hours ago";
    "withdrawal.open-dispute" => "您有未解决的订单争议", "you have an open order dispute";
    // Workers.
    "worker.not-found" => "服务人员不存在", "no such worker";
    "worker.already-registered" => "服务人员已注册", "the worker is already registered";
    "worker.suspended" => "服务人员已停用", "the worker is suspended";
    "worker.not-suspended" => "服务人员未停用", "the worker is not suspended";
    "worker.no-skills" => "至少需要一项技能", "at least one skill is required";
    "worker.reason-required" => "请填写原因", "a reason is required";
    "worker.identity-missing" => "尚未提交身份信息", "the worker has not submitted an identity number";
    "worker.background-check-missing" => "尚未完成背景审查", "the background check has not been done";
    "worker.background-check-hit" => "背景审查命中失信被执行人名单，不能通过", "the background check found the worker on the list of dishonest persons; approval is blocked";
    "worker.skill-not-declared" => "服务人员没有该技能", "the worker has not declared this skill";
    "worker.certificate-exists" => "证书已存在", "this certificate is already recorded";
    "worker.no-such-certificate" => "证书不存在", "no such certificate";
    "worker.bad-groups" => "分组最多 {max} 个，每个 1–20 字", "at most {max} groups of 1 to 20 characters";
    "worker.overlap" => "服务人员在 {start} 至 {end} 已有预约（含路程）", "the worker is already booked from {start} to {end} (Beijing time, travel included)";
    "worker.empty-window" => "服务时段无效", "the booking window is empty";
    "worker.unavailable" => "服务人员在该时段不上班或休假", "the worker does not work at that time or is on leave";
    // Why a worker may not take an order.
    "ineligible.unknown" => "服务人员不存在", "no such worker";
    "ineligible.suspended" => "服务人员已停用", "the worker is suspended";
    "ineligible.not-approved" => "服务人员尚未通过资质审核", "the worker has not passed the qualification review";
    "ineligible.lacks-skill" => "服务人员没有该服务的认证技能或有效证书", "the worker is not certified for this service or lacks a valid certificate for it";
    // The application's and the HTTP routes' own refusals, by area.
    "accounts.worker-only-worker-accounts" => "客户注册不需要 worker 资料", "`worker` is only for worker accounts";
    "accounts.worker-required-worker-accounts" => "服务人员注册须填写 worker 资料", "`worker` is required for worker accounts";
    "accounts.workers-must-give-mobile-number" => "服务人员须填写手机号", "workers must give a mobile number";
    "accounts.login-already-registered" => "该登录名已被注册", "this login is already registered";
    "accounts.prices-must-not-negative" => "价格不能为负数", "prices must not be negative";
    "accounts.unknown-pricing-unit" => "未知的计价单位", "unknown pricing unit: {unit}";
    "admin.level-must-warn-error" => "level 须为 warn 或 error", "level must be warn or error";
    "admin.rebuild-in-progress" => "重建已在进行", "{in_progress}";
    "admin.give-both-aggregate-type-aggregate" => "aggregate_type 与 aggregate_id 须同时给出", "give both aggregate_type and aggregate_id, or neither";
    "audit.from-after" => "开始时间晚于结束时间", "from is after to";
    "audit.give-sequence-not-both" => "sequence 与 at 只能给一个", "give sequence or at, not both";
    "audit.sequence-starts-1" => "sequence 从 1 开始", "sequence starts at 1";
    "availability.days-must-list-7-days" => "days 须为 7 天（周一起）", "`days` must list 7 days, Monday first";
    "availability.duration-minutes-must-30-37440" => "duration_minutes 须在 30–37440 之间", "duration_minutes must be 30 to 37440";
    "corrections.customer-paying-price-cannot-change" => "客户正在付款，不能改价", "the customer is paying; the price cannot change now";
    "corrections.refund-must-full-policy" => "refund 须为 full 或 policy", "refund must be full or policy";
    "credentials.login-must-e-mail-address" => "登录名须为邮箱或手机号", "the login must be an e-mail address or a mobile number";
    "credentials.password-must-10-128-characters" => "密码长度须为 10–128 个字符", "the password must be 10 to 128 characters";
    "dispatch.customer-asked-not-served" => "该客户不接受您的服务", "this customer has asked not to be served by you";
    "dispatch.address-outside-service-radius" => "订单地址超出您的服务范围", "the address is outside your service radius";
    "dispatch.unknown-dispatch-stage" => "未知的派单阶段", "unknown dispatch stage: {stage}";
    "dispatch.address-no-coordinates" => "该地址没有坐标", "this address has no coordinates";
    "extract.malformed-json" => "JSON 格式错误", "malformed JSON: {error}";
    "extract.invalid-path-parameter" => "路径参数 {name} 无效", "invalid path parameter {name}: {fault}";
    "extract.invalid-query-parameter" => "查询参数无效", "invalid query parameter: {detail}";
    "idempotency.key-not-ascii" => "Idempotency-Key 必须是 ASCII", "Idempotency-Key must be ASCII";
    "idempotency.key-length" => "Idempotency-Key 长度须为 1–200", "Idempotency-Key must be 1 to 200 characters";
    "live.last-event-id-must-xid" => "Last-Event-ID 格式应为 <xid>-<position>", "Last-Event-ID must be <xid>-<position>";
    "live.most-live-streams-open-once" => "同时打开的实时连接最多 {STREAMS_PER_PERSON} 个", "at most {STREAMS_PER_PERSON} live streams may be open at once";
    "oauth.confirm-first-password-code-post" => "请先重新验证身份（密码或验证码，{REAUTHENTICATION_WINDOW_MINUTES} 分钟内有效）", "confirm it is you first (password or code at POST /api/v1/me/reauthentication; it holds for {REAUTHENTICATION_WINDOW_MINUTES} minutes)";
    "oauth.wechat-sign-not-configured" => "未启用微信登录", "WeChat sign-in is not configured";
    "oauth.must-43-character-base64url-sha" => "须为 43 个字符的 base64url SHA-256", "must be the 43-character base64url SHA-256 of the verifier";
    "oauth.state-unknown-used-expired" => "state 无效、已用或已过期", "the state is unknown, used or expired";
    "oauth.verifier-does-not-match" => "与发起登录时的凭证不符", "does not match the flow's challenge";
    "oauth.wechat-account-linked-another-account" => "该微信已绑定其他账户", "this WeChat account is linked to another account";
    "oauth.link-ticket-unknown-used-expired" => "绑定凭证无效、已用或已过期", "the link ticket is unknown, used or expired";
    "onboarding.person-erased" => "这个人的数据已被删除", "this person's data has been erased";
    "onboarding.unknown-decision-use-approve-reject" => "未知的审核决定", "unknown decision `{other}`: use approve, reject or request_documents";
    "orders.blocked-worker" => "您已屏蔽该服务人员", "you have blocked this worker";
    "orders.worker-cannot-take-service-present" => "该服务人员目前不能承接此服务", "this worker cannot take this service at present";
    "orders.unpaid-orders-naming-worker-already" => "您已有 {limit} 个指定服务人员的待支付订单，请先支付或取消", "you have {limit} unpaid orders naming a worker already; pay or cancel one first";
    "orders.not-one-saved-addresses" => "不是您保存的地址", "not one of your saved addresses";
    "orders.give-either-address-address-id" => "请给出 address 或 address_id 之一", "give either address or address_id";
    "orders.review-most-1000-characters" => "评价最多 1000 字", "a review is at most 1000 characters";
    "orders.limit-must-between-1-200" => "limit 须在 1–200 之间", "limit must be between 1 and 200";
    "orders.unknown-status" => "未知的订单状态", "unknown status: {raw}";
    "orders.unknown-service" => "未知的服务", "unknown service: {service}";
    "orders.range-must-start-before-ends" => "日期范围须在一年以内且开始不晚于结束", "the range must start before it ends and span at most a year";
    "params.give-latitude-longitude-system-together" => "latitude、longitude、system 须同时给出", "give latitude, longitude and system together";
    "params.step-minutes-must-15-240" => "step_minutes 须在 15–240 之间", "step_minutes must be 15 to 240";
    "passwords.too-many-sign-ins-being" => "登录请求过多，请稍后再试", "too many sign-ins are being checked; try again shortly";
    "payments.money-released-worker-only-disputed" => "款项已结算给服务人员，只能为争议中的订单退款", "the money was released to the worker; only a disputed order can be refunded now";
    "payments.limit-from-1-200" => "limit 须在 1 到 200 之间", "limit is from 1 to 200";
    "payments.payment-method-not-available" => "该支付方式暂未开通", "this payment method is not available";
    "payments.notification-refused" => "通知未通过校验", "notification refused: {reason}";
    "payments.unknown-outcome" => "未知的结果", "unknown outcome: {outcome}";
    "payments.group-must-day-week-month" => "group 须为 day、week 或 month", "group must be day, week or month: {group}";
    "positions.malformed" => "须为 <xid>-<position>，取自命令应答的 Anjia-Position", "must be <xid>-<position>, as a command's Anjia-Position gave it";
    "positions.unknown" => "日志中没有这个位置", "no event of the log is at this position";
    "profile.email-must-e-mail-address" => "email 须为邮箱地址", "`email` must be an e-mail address";
    "reports.previous-query-still-running-wait" => "您的上一条查询仍在执行，请等它结束", "your previous query is still running; wait for it to finish";
    "reports.from-after" => "起始日期晚于结束日期", "from is after to";
    "reports.unknown-service" => "未知的服务：{service}", "unknown service: {service}";
    "reports.role-customer-worker-not" => "角色只能是 customer 或 worker", "role is customer or worker, not {role}";
    "reports.activity-report-filters-role-not" => "活跃度报表按角色筛选，不按服务或城市", "the activity report filters by role, not by service or city";
    "reports.only-activity-report-filters-role" => "只有活跃度报表按角色筛选", "only the activity report filters by role";
    "reports.format-json-csv-not" => "格式只能是 json 或 csv", "format is json or csv, not {other}";
    "reviews.reply-most-500-characters" => "回复最多 500 字", "a reply is at most 500 characters";
    "reviews.max-stars-from-1-5" => "max_stars 须在 1 到 5 之间", "max_stars is from 1 to 5";
    "reviews.limit-from-1-100" => "limit 须在 1 到 100 之间", "limit is from 1 to 100";
    "reviews.cursor-not-valid" => "cursor 无效", "the cursor is not valid";
    "sessions.give-either-password-code" => "请给出 password 或 code 之一", "give either password or code";
    "users.give-both-after-name-after" => "after_name 与 after_id 须同时给出", "give both after_name and after_id";
    "users.phone-tail-must-1-4" => "phone_tail 须为 1–4 位数字", "phone_tail must be 1 to 4 digits";
    "users.q-most-40-characters" => "q 最多 40 字", "q is at most 40 characters";
    "users.unknown-review-status" => "未知的审核状态", "unknown review status: {status}";
    "users.unknown-level" => "未知的等级", "unknown level: {level}";
    "wallet.card-number-12-19-digits" => "银行卡号须为 12–19 位数字", "a card number has 12 to 19 digits";
    "wallet.unknown-status" => "未知的状态", "unknown status: {status}";
    "withdrawals.bank-account-erased" => "银行卡信息已删除", "the bank account was erased";
    "workers.unknown-service" => "未知的服务", "unknown service: {skill}";
    "workers.min-rating-must-between-1" => "min_rating 须在 1–5 之间", "min_rating must be between 1 and 5";
    "workers.whole-kilometres-from-1-100" => "须为 1–100 的整数公里", "whole kilometres from 1 to 100";
    "workers.duration-minutes-must-between-30" => "duration_minutes 须在 30–720 之间", "duration_minutes must be between 30 and 720";
    "workers.within-km-needs-near-place" => "within_km 需要 near_latitude、near_longitude、near_system", "within_km needs a near_* place";
    // An analyst's query.
    "sql.empty" => "没有要执行的查询", "there is no query to run";
    "sql.too-long" => "查询超过 {max} 个字符", "the query is longer than {max} characters";
    "sql.not-a-query" => "只能执行一条只读 SELECT 查询：{found}", "only one read-only SELECT query may run: {found}";
    "sql.access" => "查询不能访问文件、网络、扩展或设置：{found}", "queries may not reach files, the network, extensions or settings: {found}";
    "sql.timed-out" => "查询超过 {seconds} 秒已被中止", "the query was stopped after {seconds} s";
    "sql.out-of-memory" => "查询超出内存上限：{found}", "the query went over its memory limit: {found}";
    "sql.invalid" => "查询有误：{found}", "the query is wrong: {found}";
    // Text checked at the edge.
    "text.nul" => "含有空字符", "contains a NUL character (U+0000)";
    "text.control" => "含有控制字符 U+{code}", "contains the control character U+{code}";
    "text.bidi" => "含有文字方向控制符 U+{code}", "contains the bidirectional control U+{code}";
    "text.too-long" => "超过 {max} 个字符", "longer than {max} characters";
    // A value the edge could not read (the reason is the parser's, in English).
    "invalid-value" => "取值无效（{reason}）", "{reason}";
    "bad-request" => "请求无法读取（{reason}）", "the request could not be read: {reason}";
    "extract.unreadable-path-parameter" => "路径参数无效（{reason}）", "invalid path parameter: {reason}";
    "activity.unknown-platform" => "未知平台：{platform}（ios、android、web、mini_program）", "unknown platform: {platform} (ios, android, web, mini_program)";
    "reports.max-rows-range" => "max_rows 须在 1 到 {max} 之间", "max_rows is from 1 to {max}";
    "reports.queries-at-capacity" => "同时执行的查询已达上限 {count}，请稍后再试", "{count} analysts' queries are running already; try again shortly";
    "person-erased" => "这个人的数据已被删除", "this person's data has been erased";
    "verification.sent-recently" => "验证码已发送，请 {wait} 秒后再获取", "a code was sent here less than a minute ago; ask again in {wait} seconds";
    "verification.destination-hourly-limit" => "该号码或邮箱一小时内最多获取 {max} 次验证码，请稍后再试", "at most {max} codes an hour go to one destination; try again later";
    "verification.address-hourly-limit" => "此网络一小时内最多获取 {max} 次验证码，请稍后再试", "at most {max} codes an hour are sent for one client address; try again later";
    "orders.bad-cursor" => "分页游标无效或与排序方式不符", "the page cursor is invalid or belongs to another sort order";
}
