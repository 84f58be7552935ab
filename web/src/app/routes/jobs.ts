// The worker's jobs: the grab hall and their orders.
import type { RouteRecordRaw } from 'vue-router'

export const jobsRoutes: RouteRecordRaw[] = [
  { path: 'hall', name: 'hall', component: () => import('../pages/jobs/HallPage.vue'), meta: { roles: ['worker'], tab: 'hall' } },
  { path: 'jobs', name: 'jobs', component: () => import('../pages/jobs/JobsPage.vue'), meta: { roles: ['worker'], tab: 'jobs' } },
  { path: 'jobs/:id', name: 'job', component: () => import('../pages/jobs/JobPage.vue'), meta: { roles: ['worker'], tabbar: false } },
]
