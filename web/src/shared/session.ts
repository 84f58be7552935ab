// The signed-in session, shared by every app. The access token lives in memory only; the
// refresh token is kept in localStorage so a reload can resume, and is rotated on every use
// (the server revokes the whole session when a spent one is presented again). A 401 triggers
// one refresh, which every request waiting on it shares.
import { defineStore } from 'pinia'
import { isProblem, ProblemError } from './problem'
import { savedLocale } from './i18n'

const REFRESH_KEY = 'anjia.refresh'

export type Role = 'customer' | 'worker' | 'admin' | 'analyst'

interface SessionCreated {
  access_token: string
  expires_at: string
  refresh_token: string
  session_id: string
  user_id: string
  role: string
}

/** Why the person was sent back to the sign-in page, if they were. */
export type EndReason = 'expired' | 'signed-out' | null

let refreshing: Promise<boolean> | null = null

/** The language the server writes its problems in: the one the person chose for the app. */
export function requestLanguage(): string {
  return savedLocale() === 'en' ? 'en' : 'zh-CN'
}

async function postJson(path: string, body: unknown): Promise<Response> {
  return fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'accept-language': requestLanguage() },
    body: JSON.stringify(body),
  })
}

async function problemOf(response: Response): Promise<ProblemError> {
  const body: unknown = await response.json().catch(() => null)
  if (isProblem(body)) return new ProblemError(body)
  return new ProblemError({
    type: '/problems/unexpected',
    title: response.statusText,
    status: response.status,
    detail: `请求失败（${response.status}） / the request failed (${response.status})`,
  })
}

export const useSession = defineStore('session', {
  state: () => ({
    accessToken: null as string | null,
    expiresAt: null as string | null,
    sessionId: null as string | null,
    userId: null as string | null,
    role: null as Role | null,
    login: null as string | null,
    ended: null as EndReason,
    /** How many refreshes went to the server (the tests read it). */
    refreshes: 0,
  }),
  getters: {
    signedIn: (state) => state.accessToken !== null,
  },
  actions: {
    adopt(created: SessionCreated) {
      this.accessToken = created.access_token
      this.expiresAt = created.expires_at
      this.sessionId = created.session_id
      this.userId = created.user_id
      this.role = created.role as Role
      this.ended = null
      localStorage.setItem(REFRESH_KEY, created.refresh_token)
    },

    async signIn(login: string, password: string) {
      const response = await postJson('/api/v1/sessions', { login, password })
      if (!response.ok) throw await problemOf(response)
      this.adopt((await response.json()) as SessionCreated)
      this.login = login
    },

    async signInWithCode(login: string, code: string) {
      const response = await postJson('/api/v1/sessions/code', { login, code })
      if (!response.ok) throw await problemOf(response)
      this.adopt((await response.json()) as SessionCreated)
      this.login = login
    },

    async sendCode(login: string) {
      const response = await postJson('/api/v1/verification-codes', { destination: login, purpose: 'sign_in' })
      if (!response.ok) throw await problemOf(response)
    },

    /** Spends the refresh token once; concurrent callers share the one attempt. */
    refresh(): Promise<boolean> {
      if (refreshing) return refreshing
      const token = localStorage.getItem(REFRESH_KEY)
      if (!token) return Promise.resolve(false)
      refreshing = (async () => {
        try {
          this.refreshes += 1
          const response = await postJson('/api/v1/sessions/refresh', { refresh_token: token })
          if (!response.ok) {
            this.forget('expired')
            return false
          }
          this.adopt((await response.json()) as SessionCreated)
          return true
        } catch {
          return false
        } finally {
          refreshing = null
        }
      })()
      return refreshing
    },

    /** Resumes a session after a reload, if a refresh token is kept. */
    async restore(): Promise<boolean> {
      if (this.accessToken) return true
      if (!localStorage.getItem(REFRESH_KEY)) return false
      const resumed = await this.refresh()
      if (resumed) await this.loadMe()
      return resumed
    },

    async loadMe() {
      const response = await authorizedFetch(new Request('/api/v1/me'))
      if (response.ok) {
        const me = (await response.json()) as { login: string; role: string }
        this.login = me.login
        this.role = me.role as Role
      }
    },

    async signOut() {
      const sessionId = this.sessionId
      if (sessionId && this.accessToken) {
        await authorizedFetch(
          new Request(`/api/v1/sessions/${sessionId}`, { method: 'DELETE' }),
        ).catch(() => undefined)
      }
      this.forget('signed-out')
    },

    forget(reason: EndReason) {
      this.accessToken = null
      this.expiresAt = null
      this.sessionId = null
      this.userId = null
      this.role = null
      this.ended = reason
      localStorage.removeItem(REFRESH_KEY)
    },
  },
})

/**
 * fetch with the access token; on a 401, one shared refresh and one retry. When the session
 * cannot be refreshed the store forgets it (`ended = 'expired'`) and the router sends the
 * person to the sign-in page.
 */
export async function authorizedFetch(request: Request): Promise<Response> {
  const session = useSession()
  const retry = request.clone()
  const withToken = (original: Request) => {
    const headers = new Headers(original.headers)
    if (session.accessToken) headers.set('authorization', `Bearer ${session.accessToken}`)
    headers.set('accept-language', requestLanguage())
    return new Request(original, { headers })
  }
  const sent = session.accessToken
  const response = await fetch(withToken(request))
  if (response.status !== 401 || !localStorage.getItem(REFRESH_KEY)) return response
  // Only an access token the server no longer takes is refreshed: a wrong password given to
  // reauthenticate also answers 401, and must not be sent twice.
  const problem: unknown = await response
    .clone()
    .json()
    .catch(() => null)
  if (isProblem(problem) && problem.type !== '/problems/unauthenticated') return response
  // Another request refreshed while this one was out: its token is already the new one.
  if (session.accessToken && session.accessToken !== sent) return fetch(withToken(retry))
  const refreshed = await session.refresh()
  if (!refreshed) return response
  return fetch(withToken(retry))
}
