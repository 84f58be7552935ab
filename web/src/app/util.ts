// Small helpers every screen of the phone app uses.
import type { Router } from 'vue-router'
import { showFailToast } from 'vant'
import { ProblemError } from '@/shared/problem'

/** What went wrong, in the page's language: the problem's detail, or a generic word. */
export function problemText(caught: unknown, locale: string, fallback: string): string {
  return caught instanceof ProblemError ? caught.message_in(locale) : fallback
}

/** The problem's HTTP status, if the error is one. */
export function problemStatus(caught: unknown): number | null {
  return caught instanceof ProblemError ? caught.problem.status : null
}

/** Shows what went wrong as a toast. */
export function toastProblem(caught: unknown, locale: string, fallback: string) {
  showFailToast({ message: problemText(caught, locale, fallback), wordBreak: 'break-word' })
}

/**
 * Back to where the person came from; a screen opened directly (a link, a reload) has no
 * history inside the app, so it goes to `fallback` instead of leaving the app.
 */
export function goBack(router: Router, fallback: string) {
  const state = window.history.state as { back?: string | null } | null
  if (state?.back) router.back()
  else void router.replace({ name: fallback })
}

export interface Position {
  latitude: number
  longitude: number
  accuracy_m: number
  /** Browsers report WGS-84 (the GPS datum); the server converts for each map. */
  system: 'wgs84'
}

/** The browser's position, as WGS-84 (what the Geolocation API gives). */
export function currentPosition(timeoutMs = 10_000): Promise<Position> {
  return new Promise((resolve, reject) => {
    if (!('geolocation' in navigator)) {
      reject(new Error('geolocation unavailable'))
      return
    }
    navigator.geolocation.getCurrentPosition(
      (position) =>
        resolve({
          latitude: position.coords.latitude,
          longitude: position.coords.longitude,
          accuracy_m: Math.max(1, Math.round(position.coords.accuracy)),
          system: 'wgs84',
        }),
      (error) => reject(new Error(error.message)),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 5_000 },
    )
  })
}

/**
 * A read that live events may start again before it has answered: an answer comes back only if
 * no later call has started meanwhile (that one's is newer), and `null` otherwise.
 */
export function latestOnly<A extends unknown[], T>(read: (...args: A) => Promise<T>): (...args: A) => Promise<T | null> {
  let started = 0
  return async (...args) => {
    const mine = ++started
    const answer = await read(...args)
    return mine === started ? answer : null
  }
}

/** A fresh idempotency key for one attempt at a command (a retry reuses it). */
export function idempotencyKey(): string {
  return crypto.randomUUID()
}
