// 我的 screens (both roles), under the app's shell; also the password reset and the page WeChat
// sends the browser back to (both public).
import type { RouteRecordRaw } from 'vue-router'

export const meRoutes: RouteRecordRaw[] = [
  { path: 'me/profile', name: 'profile', component: () => import('../pages/me/ProfilePage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'me/addresses', name: 'addresses', component: () => import('../pages/me/AddressesPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'me/addresses/new', name: 'address-new', component: () => import('../pages/me/AddressFormPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  {
    path: 'me/addresses/:addressId/edit',
    name: 'address-edit',
    component: () => import('../pages/me/AddressFormPage.vue'),
    meta: { roles: ['customer'], tabbar: false },
  },
  {
    path: 'me/emergency-contact',
    name: 'emergency-contact',
    component: () => import('../pages/me/EmergencyContactPage.vue'),
    meta: { roles: ['customer'], tabbar: false },
  },
  {
    path: 'me/blocked-workers',
    name: 'blocked-workers',
    component: () => import('../pages/me/BlockedWorkersPage.vue'),
    meta: { roles: ['customer'], tabbar: false },
  },
  { path: 'me/inbox', name: 'inbox', component: () => import('../pages/me/InboxPage.vue'), meta: { roles: ['customer', 'worker'], tabbar: false } },
  { path: 'me/security', name: 'security', component: () => import('../pages/me/SecurityPage.vue'), meta: { roles: ['customer', 'worker'], tabbar: false } },
  { path: 'password-reset', name: 'password-reset', component: () => import('../pages/me/PasswordResetPage.vue'), meta: { public: true, tabbar: false } },
  // ANJIA_WECHAT_REDIRECT_URI must name this page: https://<host>/app/oauth/wechat
  { path: 'oauth/wechat', name: 'wechat-callback', component: () => import('../pages/me/WechatCallbackPage.vue'), meta: { public: true, tabbar: false } },
]
