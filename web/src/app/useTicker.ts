// A clock that ticks every second while the screen is open, for countdowns.
import { onBeforeUnmount, ref } from 'vue'

export function useTicker() {
  const now = ref(Date.now())
  const timer = setInterval(() => (now.value = Date.now()), 1000)
  onBeforeUnmount(() => clearInterval(timer))
  return now
}

/** mm:ss (or h:mm:ss) until `deadline`, never negative. */
export function left(deadline: string | null | undefined, now: number): string | null {
  if (!deadline) return null
  const seconds = Math.max(0, Math.floor((new Date(deadline).getTime() - now) / 1000))
  const h = Math.floor(seconds / 3600)
  const m = String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')
  const s = String(seconds % 60).padStart(2, '0')
  return h > 0 ? `${h}:${m}:${s}` : `${m}:${s}`
}
