// Refusals arrive as RFC 9457 problem+json: a stable `type` and `code`, and a `detail` in the
// language the request asked for (`Accept-Language`, which the client sets to the app's).
// A text written in both (`中文 / English`) shows the half in the page's language.

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  /** The refusal's stable code (`order.illegal-transition`); absent from a made-up problem. */
  code?: string
  field?: string
}

export function isProblem(value: unknown): value is Problem {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Problem).type === 'string' &&
    typeof (value as Problem).detail === 'string'
  )
}

/** The half of a bilingual text (`中文 / English`) in `locale`; the whole text if it has no halves. */
export function inLocale(text: string, locale: string): string {
  // The halves meet at a slash with a space after it and English after that; the Chinese half
  // may end in its own full stop, with no space before the slash.
  const split = /\s?\/\s+(?=[A-Za-z0-9"'(])/.exec(text)
  if (!split) return text
  return locale.startsWith('zh') ? text.slice(0, split.index).trim() : text.slice(split.index + split[0].length).trim()
}

/** A thrown problem, so pages can catch it and show its detail. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail)
    this.name = 'ProblemError'
  }

  message_in(locale: string): string {
    return inLocale(this.problem.detail, locale)
  }
}
