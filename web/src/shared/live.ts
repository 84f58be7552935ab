// The live channel (`GET /api/v1/live`, Server-Sent Events) read with fetch, since EventSource
// cannot send the access token. Each message's id is its place in the log; after a dropped
// connection the stream resumes from the last id it saw (`Last-Event-ID`), so nothing is missed
// or repeated. A resume point older than the server keeps answers 410: the page reloads what
// it shows (`onReset`) and the stream starts afresh.
import { authorizedFetch } from './session'

export interface LiveMessage {
  /** The event's place in the log (the message's id): reads that ask for it as their
   * `min_position` see the event applied. */
  id?: string
  order_id: string
  event_type: string
  sequence: number
  recorded_at: string
  /** For a location report: where the worker is (as the people following the order may see it) and the arrival estimate. */
  position?: { latitude: number; longitude: number; system: string; eta?: string | null }
}

export interface LiveHandlers {
  onMessage: (message: LiveMessage) => void
  onReset?: () => void
  onState?: (connected: boolean) => void
}

/** Parses complete SSE records out of `buffer`; answers them and what is left over. */
export function parseEvents(buffer: string): { events: { id?: string; data: string }[]; rest: string } {
  const events: { id?: string; data: string }[] = []
  const records = buffer.replace(/\r\n/g, '\n').split('\n\n')
  const rest = records.pop() ?? ''
  for (const record of records) {
    let id: string | undefined
    const data: string[] = []
    for (const line of record.split('\n')) {
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'id') id = value
      if (field === 'data') data.push(value)
    }
    if (data.length > 0) events.push({ id, data: data.join('\n') })
  }
  return { events, rest }
}

/** Opens the live channel until the returned function is called. */
export function openLive(handlers: LiveHandlers): () => void {
  const controller = new AbortController()
  let lastId: string | null = null
  let stopped = false

  async function connect(): Promise<void> {
    while (!stopped) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' }
        if (lastId) headers['last-event-id'] = lastId
        const response = await authorizedFetch(new Request('/api/v1/live', { headers, signal: controller.signal }))
        if (response.status === 410) {
          lastId = null
          handlers.onReset?.()
          continue
        }
        if (!response.ok || !response.body) throw new Error(`live: ${response.status}`)
        handlers.onState?.(true)
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          const parsed = parseEvents(buffer + value)
          buffer = parsed.rest
          for (const event of parsed.events) {
            if (event.id) lastId = event.id
            handlers.onMessage({ ...(JSON.parse(event.data) as LiveMessage), id: event.id })
          }
        }
      } catch {
        if (stopped) return
      }
      handlers.onState?.(false)
      // A short pause before resuming, so a server restart is not hammered.
      await new Promise((resolve) => setTimeout(resolve, 2000))
    }
  }

  void connect()
  return () => {
    stopped = true
    controller.abort()
  }
}
