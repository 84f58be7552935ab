// Money is integer fen; times are UTC instants shown in Asia/Shanghai (UTC+8 all year).

const SHANGHAI = 'Asia/Shanghai'

/** ¥1,234.50 from 123450 fen; a minus sign before the yuan sign for negative amounts. */
export function money(fen: number | null | undefined): string {
  if (fen === null || fen === undefined || !Number.isFinite(fen)) return '—'
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(Math.trunc(fen))
  const yuan = Math.floor(abs / 100)
  const cents = String(abs % 100).padStart(2, '0')
  return `${sign}¥${yuan.toLocaleString('en-US')}.${cents}`
}

/** Yuan as a plain number (for charts' axes), from fen. */
export function yuan(fen: number): number {
  return Math.round(fen) / 100
}

function parts(instant: string | Date): Record<string, string> | null {
  const date = typeof instant === 'string' ? new Date(instant) : instant
  if (Number.isNaN(date.getTime())) return null
  const formatted = new Intl.DateTimeFormat('en-GB', {
    timeZone: SHANGHAI,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date)
  return Object.fromEntries(formatted.map((part) => [part.type, part.value]))
}

/** 2026-12-02 14:30 in Shanghai time. */
export function dateTime(instant: string | Date | null | undefined, seconds = false): string {
  if (!instant) return '—'
  const p = parts(instant)
  if (!p) return '—'
  const time = seconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`
  return `${p.year}-${p.month}-${p.day} ${time}`
}

/** 2026-12-02, the Shanghai business day of an instant. */
export function businessDay(instant: string | Date): string {
  const p = parts(instant)
  return p ? `${p.year}-${p.month}-${p.day}` : '—'
}

/** The UTC instant at which a Shanghai local date (YYYY-MM-DD) begins. */
export function startOfShanghaiDay(date: string): string {
  return new Date(`${date}T00:00:00+08:00`).toISOString()
}

/** A percentage from a ratio in [0, 1], with one decimal. */
export function percent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '—'
  return `${(ratio * 100).toFixed(1)}%`
}
