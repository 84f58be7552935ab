// The console's pages. Each route names the roles that may open it; the menu shows only those,
// and the server answers 403 to the API calls of the rest anyway.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSession, type Role } from '@/shared/session'

declare module 'vue-router' {
  interface RouteMeta {
    roles?: Role[]
    menu?: string
    icon?: string
    public?: boolean
  }
}

const ADMIN: Role[] = ['admin']
const READERS: Role[] = ['admin', 'analyst']

export const pages: RouteRecordRaw[] = [
  { path: 'dashboard', name: 'dashboard', component: () => import('./pages/DashboardPage.vue'), meta: { roles: ADMIN, menu: 'dashboard', icon: 'Odometer' } },
  { path: 'orders', name: 'orders', component: () => import('./pages/OrdersPage.vue'), meta: { roles: ADMIN, menu: 'orders', icon: 'Tickets' } },
  { path: 'dispatch', name: 'dispatch', component: () => import('./pages/DispatchPage.vue'), meta: { roles: ADMIN, menu: 'dispatch', icon: 'Position' } },
  { path: 'workers', name: 'workers', component: () => import('./pages/WorkersPage.vue'), meta: { roles: ADMIN, menu: 'workers', icon: 'UserFilled' } },
  { path: 'customers', name: 'customers', component: () => import('./pages/CustomersPage.vue'), meta: { roles: ADMIN, menu: 'customers', icon: 'User' } },
  { path: 'money', name: 'money', component: () => import('./pages/MoneyPage.vue'), meta: { roles: ADMIN, menu: 'money', icon: 'Money' } },
  { path: 'reviews', name: 'reviews', component: () => import('./pages/ReviewsPage.vue'), meta: { roles: ADMIN, menu: 'reviews', icon: 'Star' } },
  { path: 'analytics', name: 'analytics', component: () => import('./pages/AnalyticsPage.vue'), meta: { roles: READERS, menu: 'analytics', icon: 'TrendCharts' } },
  { path: 'audit', name: 'audit', component: () => import('./pages/AuditPage.vue'), meta: { roles: ADMIN, menu: 'audit', icon: 'Document' } },
  { path: 'operations', name: 'operations', component: () => import('./pages/OperationsPage.vue'), meta: { roles: ADMIN, menu: 'operations', icon: 'Monitor' } },
  { path: 'sql', name: 'sql', component: () => import('./pages/SqlPage.vue'), meta: { roles: ['analyst'], menu: 'sql', icon: 'Coin' } },
]

const routes: RouteRecordRaw[] = [
  { path: '/sign-in', name: 'sign-in', component: () => import('./pages/SignInPage.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('./ConsoleLayout.vue'),
    children: [
      { path: '', name: 'home', redirect: () => ({ name: homeFor(useSession().role) }) },
      ...pages,
      { path: 'forbidden', name: 'forbidden', component: () => import('./pages/ForbiddenPage.vue') },
      { path: ':rest(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue') },
    ],
  },
]

/** Where a role lands after signing in. */
export function homeFor(role: Role | null): string {
  return role === 'analyst' ? 'analytics' : 'dashboard'
}

export const router = createRouter({
  history: createWebHistory('/admin/'),
  routes,
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = useSession()
  if (!session.signedIn && !(await session.restore())) {
    return { name: 'sign-in', query: to.fullPath === '/' ? {} : { redirect: to.fullPath } }
  }
  const roles = to.meta.roles
  if (roles && (!session.role || !roles.includes(session.role))) {
    return { name: 'forbidden' }
  }
  return true
})

// A session that ends while a page is open (refresh refused) goes back to sign in.
export function watchSessionEnd() {
  const session = useSession()
  session.$subscribe((_mutation, state) => {
    if (state.accessToken === null && state.ended === 'expired') {
      const current = router.currentRoute.value
      if (!current.meta.public) {
        void router.replace({ name: 'sign-in', query: { redirect: current.fullPath } })
      }
    }
  })
}
