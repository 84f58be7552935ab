import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { authorizedFetch, useSession } from './session'

/** A browser's localStorage, enough for the session store. */
function storage() {
  const items = new Map<string, string>()
  return {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
    removeItem: (key: string) => void items.delete(key),
  }
}

function created(access: string, refresh: string) {
  return new Response(
    JSON.stringify({ access_token: access, expires_at: '2030-01-01T00:00:00Z', refresh_token: refresh, session_id: 's', user_id: 'u', role: 'admin' }),
    { status: 201, headers: { 'content-type': 'application/json' } },
  )
}

describe('the session', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.stubGlobal('localStorage', storage())
  })

  it('refreshes once for every request that met a 401 at the same time, then retries each', async () => {
    const session = useSession()
    session.accessToken = 'old'
    localStorage.setItem('anjia.refresh', 'r1')
    let refreshes = 0
    vi.stubGlobal(
      'fetch',
      vi.fn(async (input: Request | string) => {
        const request = typeof input === 'string' ? new Request(`http://x${input}`) : input
        if (request.url.endsWith('/api/v1/sessions/refresh')) {
          refreshes += 1
          await new Promise((resolve) => setTimeout(resolve, 10))
          return created('new', 'r2')
        }
        const token = request.headers.get('authorization')
        return new Response(token === 'Bearer new' ? '{}' : '', { status: token === 'Bearer new' ? 200 : 401 })
      }),
    )
    const answers = await Promise.all([1, 2, 3].map(() => authorizedFetch(new Request('http://x/api/v1/me'))))
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200])
    expect(refreshes).toBe(1)
    expect(session.accessToken).toBe('new')
    expect(localStorage.getItem('anjia.refresh')).toBe('r2')
  })

  it('does not refresh again for a 401 that comes back after another request refreshed', async () => {
    const session = useSession()
    session.accessToken = 'old'
    localStorage.setItem('anjia.refresh', 'r1')
    let refreshes = 0
    let releaseSlow: () => void = () => undefined
    const slowHeld = new Promise<void>((resolve) => (releaseSlow = resolve))
    vi.stubGlobal(
      'fetch',
      vi.fn(async (input: Request | string) => {
        const request = typeof input === 'string' ? new Request(`http://x${input}`) : input
        if (request.url.endsWith('/api/v1/sessions/refresh')) {
          refreshes += 1
          return created(`new-${refreshes}`, `r${refreshes + 1}`)
        }
        const token = request.headers.get('authorization')
        // The slow request's 401 is held until the fast one has refreshed and retried.
        if (request.url.endsWith('/slow') && token === 'Bearer old') await slowHeld
        const fresh = token?.startsWith('Bearer new') ?? false
        return new Response(fresh ? '{}' : '', { status: fresh ? 200 : 401 })
      }),
    )
    const slow = authorizedFetch(new Request('http://x/api/v1/slow'))
    const fast = await authorizedFetch(new Request('http://x/api/v1/fast'))
    expect(fast.status).toBe(200)
    releaseSlow()
    expect((await slow).status).toBe(200)
    expect(refreshes).toBe(1)
    expect(localStorage.getItem('anjia.refresh')).toBe('r2')
  })

  it('forgets a session whose refresh is refused, so the page returns to sign-in', async () => {
    const session = useSession()
    session.accessToken = 'old'
    localStorage.setItem('anjia.refresh', 'spent')
    vi.stubGlobal('fetch', vi.fn(async () => new Response('', { status: 401 })))
    const answer = await authorizedFetch(new Request('http://x/api/v1/me'))
    expect(answer.status).toBe(401)
    expect(session.accessToken).toBeNull()
    expect(session.ended).toBe('expired')
    expect(localStorage.getItem('anjia.refresh')).toBeNull()
  })
})
