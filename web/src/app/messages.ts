// The phone apps' texts. zh-CN is the default; `en` has every key (the type says so). The
// shared texts are here; each part of the app keeps its own in `i18n/`, under one namespace.
import me from './i18n/me'
import work from './i18n/work'
import shop from './i18n/shop'
import jobs from './i18n/jobs'

const core = {
  app: { name: '安家', tagline: '放心的家政服务' },
  tabs: { services: '服务', workers: '服务人员', orders: '订单', me: '我的', hall: '抢单大厅', jobs: '我的工单', income: '收入' },
  common: {
    loading: '加载中…',
    empty: '暂无内容',
    failed: '操作失败',
    retry: '重试',
    search: '搜索',
    confirm: '确定',
    cancel: '取消',
    language: 'English',
  },
  signIn: {
    title: '登录',
    login: '手机号或邮箱',
    password: '密码',
    code: '验证码',
    sendCode: '获取验证码',
    resend: '{n} 秒后重发',
    codeSent: '验证码已发送',
    withPassword: '密码登录',
    withCode: '验证码登录',
    submit: '登录',
    toRegister: '没有账号？注册',
    toSignIn: '已有账号？登录',
    expired: '登录已过期，请重新登录',
    staff: '管理员与分析师请使用后台管理端',
  },
  register: {
    title: '注册',
    name: '姓名',
    password: '设置密码（10 到 128 个字符）',
    submit: '注册并登录',
  },
  services: {
    title: '家政服务',
    searchHint: '搜索服务：保洁、月嫂、repair…',
    all: '全部',
    price: '价格',
    duration: '时长',
    anyPrice: '不限价格',
    anyDuration: '不限时长',
    upTo: '{yuan} 元以内',
    from: '{yuan} 元起',
    minutes: '{n} 分钟',
    hours: '{n} 小时',
    days: '{n} 天',
    perHour: '/小时',
    perVisit: '/次',
    perTerm: '/26天',
    typical: '常见时长 {n}',
    none: '没有符合条件的服务',
  },
}

const zh = { ...core, me: me.zh, work: work.zh, shop: shop.zh, jobs: jobs.zh }

export type Messages = typeof zh

const coreEn: typeof core = {
  app: { name: 'Anjia', tagline: 'Home services you can trust' },
  tabs: { services: 'Services', workers: 'Workers', orders: 'Orders', me: 'Me', hall: 'Grab', jobs: 'My jobs', income: 'Income' },
  common: {
    loading: 'Loading…',
    empty: 'Nothing here yet',
    failed: 'Failed',
    retry: 'Retry',
    search: 'Search',
    confirm: 'Confirm',
    cancel: 'Cancel',
    language: '中文',
  },
  signIn: {
    title: 'Sign in',
    login: 'Phone or e-mail',
    password: 'Password',
    code: 'Code',
    sendCode: 'Send code',
    resend: 'Again in {n}s',
    codeSent: 'Code sent',
    withPassword: 'Password',
    withCode: 'One-time code',
    submit: 'Sign in',
    toRegister: 'No account? Sign up',
    toSignIn: 'Have an account? Sign in',
    expired: 'Your session expired; please sign in again',
    staff: 'Administrators and analysts use the console',
  },
  register: {
    title: 'Sign up',
    name: 'Name',
    password: 'Password (10 to 128 characters)',
    submit: 'Sign up',
  },
  services: {
    title: 'Home services',
    searchHint: 'Search: cleaning, 月嫂, repair…',
    all: 'All',
    price: 'Price',
    duration: 'Duration',
    anyPrice: 'Any price',
    anyDuration: 'Any duration',
    upTo: 'Up to ¥{yuan}',
    from: 'From ¥{yuan}',
    minutes: '{n} min',
    hours: '{n} h',
    days: '{n} days',
    perHour: '/hour',
    perVisit: '/visit',
    perTerm: '/26 days',
    typical: 'Usually {n}',
    none: 'No service matches',
  },
}

const en: Messages = { ...coreEn, me: me.en, work: work.en, shop: shop.en, jobs: jobs.en }

export const messages = { 'zh-CN': zh, en }
