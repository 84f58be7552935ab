// The phone app: one app for customers and workers, showing each their own screens by the
// signed-in role (one address to add to the home screen, one sign-in; each role's screens are
// their own chunks, so nobody downloads the other's).
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSession, type Role } from '@/shared/session'
// The shell and the services are where most people land: part of the first download, so a
// slow phone waits for no further round trip before it can browse. The rest load on demand.
import AppShell from './AppShell.vue'
import ServicesPage from './pages/ServicesPage.vue'
import { meRoutes } from './routes/me'
import { workRoutes } from './routes/work'
import { shopRoutes } from './routes/shop'
import { jobsRoutes } from './routes/jobs'

declare module 'vue-router' {
  interface RouteMeta {
    roles?: Role[]
    public?: boolean
    tab?: string
    /** Detail screens hide the tab bar and show a back arrow instead. */
    tabbar?: boolean
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/sign-in', name: 'sign-in', component: () => import('./pages/SignInPage.vue'), meta: { public: true } },
  { path: '/register', name: 'register', component: () => import('./pages/RegisterPage.vue'), meta: { public: true } },
  {
    path: '/',
    component: AppShell,
    children: [
      { path: '', name: 'home', redirect: () => ({ name: useSession().role === 'worker' ? 'hall' : 'services' }) },
      { path: 'services', name: 'services', component: ServicesPage, meta: { tab: 'services', public: true } },
      { path: 'me', name: 'me', component: () => import('./pages/MePage.vue'), meta: { tab: 'me', roles: ['customer', 'worker'] } },
      ...meRoutes,
      ...workRoutes,
      ...shopRoutes,
      ...jobsRoutes,
      { path: ':rest(.*)*', redirect: { name: 'home' } },
    ],
  },
]

export const router = createRouter({
  history: createWebHistory('/app/'),
  routes,
})

router.beforeEach(async (to) => {
  const session = useSession()
  if (!session.signedIn) await session.restore()
  if (to.meta.public) return true
  if (!session.signedIn) return { name: 'sign-in', query: { redirect: to.fullPath } }
  const roles = to.meta.roles
  if (roles && (!session.role || !roles.includes(session.role))) return { name: 'home' }
  return true
})
