// The worker's back office, its pure rules: the six services and the certificates each needs,
// identity numbers, working hours, and yuan typed by a person turned into integer fen. The same
// rules the server decides with (domain/src/onboarding.rs, availability.rs); checked here first
// only to say what is wrong before asking.

export const SERVICES = ['daily_cleaning', 'deep_cleaning', 'nanny', 'maternity_nurse', 'infant_carer', 'home_repair'] as const
export type ServiceCode = (typeof SERVICES)[number]

export const CERTIFICATES = ['health_certificate', 'maternity_care', 'infant_care', 'housekeeping', 'electrician'] as const
export type CertificateCode = (typeof CERTIFICATES)[number]

const REQUIRED: Record<ServiceCode, CertificateCode[]> = {
  daily_cleaning: ['health_certificate'],
  deep_cleaning: ['health_certificate'],
  nanny: ['health_certificate'],
  maternity_nurse: ['health_certificate', 'maternity_care'],
  infant_carer: ['health_certificate', 'infant_care'],
  home_repair: [],
}

export function isService(code: string): code is ServiceCode {
  return (SERVICES as readonly string[]).includes(code)
}

/** The certificates a worker with these skills needs, each once, in the catalogue's order. */
export function certificatesFor(skills: readonly string[]): CertificateCode[] {
  const needed = new Set(skills.filter(isService).flatMap((skill) => REQUIRED[skill]))
  return CERTIFICATES.filter((kind) => needed.has(kind))
}

/** The required certificates with no declared copy still in force. */
export function missingCertificates(skills: readonly string[], held: readonly { kind: string; expired: boolean }[]): CertificateCode[] {
  return certificatesFor(skills).filter((kind) => !held.some((certificate) => certificate.kind === kind && !certificate.expired))
}

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

/**
 * Whether a text is a well-formed resident identity card number: 18 characters, a real birth
 * date, and the right check character (GB 11643, ISO 7064 MOD 11-2).
 */
export function isIdCardNumber(raw: string): boolean {
  const number = raw.trim().toUpperCase()
  if (!/^\d{17}[\dX]$/.test(number)) return false
  const sum = WEIGHTS.reduce((total, weight, index) => total + Number(number[index]) * weight, 0)
  if ('10X98765432'[sum % 11] !== number[17]) return false
  const year = Number(number.slice(6, 10))
  const month = Number(number.slice(10, 12))
  const day = Number(number.slice(12, 14))
  const date = new Date(Date.UTC(year, month - 1, day))
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
}

/**
 * Integer fen from yuan as typed ("12", "12.5", "12.50", "¥1,000"); null when it is not an
 * amount with at most two decimals. Exact: no floating point on the way.
 */
export function yuanToFen(text: string): number | null {
  const cleaned = text.trim().replace(/^[¥￥]/, '').replace(/,/g, '').trim()
  const match = /^(\d+)(?:\.(\d{0,2}))?$/.exec(cleaned)
  if (!match) return null
  const whole = Number(match[1])
  const cents = Number((match[2] ?? '').padEnd(2, '0'))
  const fen = whole * 100 + cents
  return Number.isSafeInteger(fen) ? fen : null
}

/** A list typed in one field: split on commas (either width), 、 and whitespace. */
export function splitList(text: string): string[] {
  return text
    .split(/[,，、;；\s]+/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
}

export interface Range {
  start: string
  end: string
}

/** `09:00` from `09:00`, `9:00` or `09:00:00`; null if it is not a time of day. */
export function hhmm(text: string): string | null {
  const match = /^(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?$/.exec(text.trim())
  if (!match) return null
  const hours = Number(match[1])
  const minutes = Number(match[2])
  if (hours > 23 || minutes > 59) return null
  return `${String(hours).padStart(2, '0')}:${match[2]}`
}

export type RangeProblem = 'format' | 'order' | 'overlap'

/**
 * One day's hours, checked as the server checks them: each `HH:MM`, each ending after it
 * starts, none overlapping. The ranges come back sorted, or the first problem found.
 */
export function checkRanges(ranges: readonly Range[]): { ranges: Range[] } | { problem: RangeProblem } {
  const parsed: Range[] = []
  for (const range of ranges) {
    const start = hhmm(range.start)
    const end = hhmm(range.end)
    if (!start || !end) return { problem: 'format' }
    if (end <= start) return { problem: 'order' }
    parsed.push({ start, end })
  }
  parsed.sort((a, b) => a.start.localeCompare(b.start))
  for (let index = 1; index < parsed.length; index += 1) {
    if (parsed[index]!.start < parsed[index - 1]!.end) return { problem: 'overlap' }
  }
  return { ranges: parsed }
}

/** The weekly plan as seven editable days, Monday first (an absent plan: seven empty days). */
export function planDays(plan: readonly (readonly Range[])[] | null | undefined): Range[][] {
  return Array.from({ length: 7 }, (_, index) =>
    (plan?.[index] ?? []).map((range) => ({ start: hhmm(range.start) ?? range.start, end: hhmm(range.end) ?? range.end })),
  )
}

/** `09:00–12:00, 14:00–18:00`, or null for no hours. */
export function rangesText(ranges: readonly Range[]): string | null {
  if (ranges.length === 0) return null
  return ranges.map((range) => `${hhmm(range.start) ?? range.start}–${hhmm(range.end) ?? range.end}`).join(', ')
}

/** Today's date in Shanghai, `YYYY-MM-DD` (what the server calls a business day). */
export function shanghaiToday(now: Date = new Date()): string {
  return new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 10)
}

/** Whether a login is a mainland mobile number (then it is also the worker's phone). */
export function isMobile(login: string): boolean {
  return /^(?:\+?86)?1[3-9]\d{9}$/.test(login.replace(/[\s-]/g, ''))
}
