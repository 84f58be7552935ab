// The customer's screens: workers, booking, paying, orders, reviews, interviews (the last
// also the worker's).
import type { RouteRecordRaw } from 'vue-router'

export const shopRoutes: RouteRecordRaw[] = [
  { path: 'workers', name: 'workers', component: () => import('../pages/shop/WorkersPage.vue'), meta: { tab: 'workers', public: true } },
  { path: 'workers/:id', name: 'worker', component: () => import('../pages/shop/WorkerPage.vue'), meta: { public: true, tabbar: false } },
  { path: 'book', name: 'book', component: () => import('../pages/shop/BookPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'orders', name: 'orders', component: () => import('../pages/shop/OrdersPage.vue'), meta: { roles: ['customer'], tab: 'orders' } },
  { path: 'orders/:id', name: 'order', component: () => import('../pages/shop/OrderPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'orders/:id/pay', name: 'pay', component: () => import('../pages/shop/PayPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'orders/:id/review', name: 'review', component: () => import('../pages/shop/ReviewPage.vue'), meta: { roles: ['customer'], tabbar: false } },
  { path: 'interviews', name: 'interviews', component: () => import('../pages/shop/InterviewsPage.vue'), meta: { roles: ['customer', 'worker'], tabbar: false } },
  { path: 'interviews/:id', name: 'interview', component: () => import('../pages/shop/InterviewPage.vue'), meta: { roles: ['customer', 'worker'], tabbar: false } },
]
