// Simplified Chinese first, English second, in every app. The choice is kept per browser.
import { createI18n } from 'vue-i18n'

export type Locale = 'zh-CN' | 'en'

const LOCALE_KEY = 'anjia.locale'

export function savedLocale(): Locale {
  return localStorage.getItem(LOCALE_KEY) === 'en' ? 'en' : 'zh-CN'
}

export function saveLocale(locale: Locale) {
  localStorage.setItem(LOCALE_KEY, locale)
  document.documentElement.lang = locale
}

/** An app's i18n: its messages in both languages, with the same keys (the type says so). */
export function makeI18n<Schema extends object>(messages: Record<Locale, Schema>) {
  const locale = savedLocale()
  document.documentElement.lang = locale
  return createI18n<[Schema], Locale, false>({
    legacy: false,
    locale,
    fallbackLocale: 'zh-CN',
    messages,
  })
}
