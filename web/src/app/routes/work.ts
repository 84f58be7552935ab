// The worker's own screens: onboarding, working time, income, reviews received.
import type { RouteRecordRaw } from 'vue-router'

export const workRoutes: RouteRecordRaw[] = [
  {
    path: 'work/onboarding',
    name: 'onboarding',
    component: () => import('../pages/work/OnboardingPage.vue'),
    meta: { roles: ['worker'], tabbar: false },
  },
  {
    path: 'work/schedule',
    name: 'schedule',
    component: () => import('../pages/work/SchedulePage.vue'),
    meta: { roles: ['worker'], tabbar: false },
  },
  {
    path: 'income',
    name: 'income',
    component: () => import('../pages/work/IncomePage.vue'),
    meta: { roles: ['worker'], tab: 'income' },
  },
  {
    path: 'work/reviews',
    name: 'worker-reviews',
    component: () => import('../pages/work/WorkerReviewsPage.vue'),
    meta: { roles: ['worker'], tabbar: false },
  },
]
