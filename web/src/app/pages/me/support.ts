// What the 我的 screens share: WeChat sign-in's browser half, and short labels.
import { api, unwrap } from '@/api/client'
import type { components } from '@/api/schema'

type Datum = components['schemas']['Datum']

/** A coordinate datum from the server's spelling, if it is one. */
export function datumOf(system: string | null | undefined): Datum | null {
  return system === 'wgs84' || system === 'gcj02' || system === 'bd09' ? system : null
}

/** A short name for a session's device, from its user agent. */
export function deviceOf(agent: string | null | undefined): string | null {
  if (!agent) return null
  const system = /iPhone|iPad/.test(agent)
    ? /iPad/.test(agent)
      ? 'iPad'
      : 'iPhone'
    : /HarmonyOS/.test(agent)
      ? 'HarmonyOS'
      : /Android/.test(agent)
        ? 'Android'
        : /Windows/.test(agent)
          ? 'Windows'
          : /Mac OS X|Macintosh/.test(agent)
            ? 'macOS'
            : /Linux/.test(agent)
              ? 'Linux'
              : null
  const browser = /MicroMessenger/.test(agent)
    ? 'WeChat'
    : /Edg\//.test(agent)
      ? 'Edge'
      : /Firefox\//.test(agent)
        ? 'Firefox'
        : /Chrome\/|CriOS\//.test(agent)
          ? 'Chrome'
          : /Safari\//.test(agent)
            ? 'Safari'
            : null
  const parts = [system, browser].filter((part): part is string => part !== null)
  return parts.length > 0 ? parts.join(' · ') : agent.slice(0, 40)
}

// --- WeChat sign-in (OAuth 2.0 code flow with a PKCE-style verifier) ---------------------------
//
// The browser makes a random verifier and keeps it; the server gets only its SHA-256 (the
// challenge) when the flow starts, and the verifier when the page WeChat sends the browser back
// to posts the code. The flow is kept in localStorage, not sessionStorage, because WeChat may
// come back in another tab; it is spent once and lasts ten minutes, as the server's state does.

const FLOW_KEY = 'anjia.wechat.flow'
const TICKET_KEY = 'anjia.wechat.ticket'
const FLOW_LIFETIME_MS = 10 * 60 * 1000
/** The server keeps a link ticket for 30 minutes; this page forgets it a little earlier. */
const TICKET_LIFETIME_MS = 25 * 60 * 1000

export interface WechatFlow {
  state: string
  verifier: string
  /** Where to go once signed in (a sign-in flow). */
  redirect: string | null
  /** True when the flow links WeChat to the signed-in account. */
  linking: boolean
  startedAt: number
}

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return base64url(new Uint8Array(digest))
}

let configured: Promise<boolean> | null = null

/** Whether the server has WeChat sign-in configured (asked once per page load). */
export function wechatConfigured(): Promise<boolean> {
  configured ??= api
    .GET('/api/v1/oauth/providers', {})
    .then((result) => result.data?.wechat === true)
    .catch(() => false)
  return configured
}

/**
 * Starts a WeChat flow and sends the browser to WeChat. Signed in, the flow links WeChat to the
 * account, which needs a fresh re-authentication: the server refuses with 403 otherwise (the
 * `ProblemError` is thrown to the caller, which asks for the password and tries again).
 */
export async function startWechat(redirect: string | null): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)))
  const code_challenge = await challengeOf(verifier)
  const view = unwrap(await api.GET('/api/v1/oauth/wechat/authorize', { params: { query: { code_challenge } } }))
  const flow: WechatFlow = { state: view.state, verifier, redirect, linking: view.linking, startedAt: Date.now() }
  localStorage.setItem(FLOW_KEY, JSON.stringify(flow))
  window.location.assign(view.authorize_url)
}

/** The flow WeChat came back for, spent: null when there is none, it is stale or `state` is not its. */
export function takeWechatFlow(state: string): WechatFlow | null {
  const raw = localStorage.getItem(FLOW_KEY)
  localStorage.removeItem(FLOW_KEY)
  if (!raw) return null
  try {
    const flow = JSON.parse(raw) as WechatFlow
    if (flow.state !== state || Date.now() - flow.startedAt > FLOW_LIFETIME_MS) return null
    return flow
  } catch {
    return null
  }
}

/** Keeps the link ticket of a WeChat identity no account has yet, until its owner signs in. */
export function keepLinkTicket(ticket: string) {
  localStorage.setItem(TICKET_KEY, JSON.stringify({ ticket, keptAt: Date.now() }))
}

/** The kept link ticket, if it is still fresh. */
export function linkTicket(): string | null {
  const raw = localStorage.getItem(TICKET_KEY)
  if (!raw) return null
  try {
    const kept = JSON.parse(raw) as { ticket: string; keptAt: number }
    if (Date.now() - kept.keptAt > TICKET_LIFETIME_MS) {
      localStorage.removeItem(TICKET_KEY)
      return null
    }
    return kept.ticket
  } catch {
    localStorage.removeItem(TICKET_KEY)
    return null
  }
}

export function forgetLinkTicket() {
  localStorage.removeItem(TICKET_KEY)
}
