// One live channel for the whole app, shared by every screen that follows it: a phone keeps
// one stream open however many screens it passes through (the server allows a person three),
// and a screen that is left only stops listening. The stream closes when nobody has listened
// for half a minute, and at once when the session ends.
import { onBeforeUnmount, ref, watch } from 'vue'
import { openLive, type LiveMessage } from '@/shared/live'
import { useSession } from '@/shared/session'

export interface LiveListener {
  onMessage?: (message: LiveMessage) => void
  /** The resume point was too old: reload what the screen shows. */
  onReset?: () => void
  /** The stream is back after a gap (or opened): read what may have changed meanwhile. */
  onReconnect?: () => void
}

const listeners = new Set<LiveListener>()
/** Whether the live stream is connected now. */
export const liveConnected = ref(false)
let stop: (() => void) | null = null
let idle: ReturnType<typeof setTimeout> | undefined
let watching = false

function close() {
  stop?.()
  stop = null
  liveConnected.value = false
}

function ensureOpen() {
  if (!watching) {
    watching = true
    const session = useSession()
    watch(
      () => session.userId,
      () => close(),
    )
  }
  if (stop) return
  stop = openLive({
    onMessage: (message) => listeners.forEach((listener) => listener.onMessage?.(message)),
    onReset: () => listeners.forEach((listener) => listener.onReset?.()),
    onState: (connected) => {
      const was = liveConnected.value
      liveConnected.value = connected
      if (connected && !was) listeners.forEach((listener) => listener.onReconnect?.())
    },
  })
}

/** Listens to the live channel while the calling component is mounted. */
export function useLive(listener: LiveListener) {
  listeners.add(listener)
  clearTimeout(idle)
  ensureOpen()
  onBeforeUnmount(() => {
    listeners.delete(listener)
    if (listeners.size === 0) idle = setTimeout(() => listeners.size === 0 && close(), 30_000)
  })
  return liveConnected
}
