// The catalogue's six services, loaded once and named in the page's language.
import { computed } from 'vue'
import { useI18n } from 'vue-i18n'
import type { components } from '@/api/schema'
import { useCatalogue } from '@/shared/catalogue'
import { businessDay, dateTime } from '@/shared/format'

export type { CatalogueEntry } from '@/shared/catalogue'
export type ServiceCode = components['schemas']['Service']

export function useServices() {
  const store = useCatalogue()
  const { locale } = useI18n()
  void store.load()
  return {
    entries: computed(() => store.entries),
    load: () => store.load(),
    entry: (code: string | null | undefined) => store.entries.find((entry) => entry.code === code),
    name: (code: string | null | undefined) => (code ? store.name(code, locale.value) : ''),
  }
}

/** Services that are interviewed before hiring: live-in and long care. */
export const INTERVIEWED: ServiceCode[] = ['nanny', 'maternity_nurse', 'infant_carer']

/** Today's date in Asia/Shanghai, plus `days`, as YYYY-MM-DD. */
export function shanghaiDate(days = 0): string {
  return businessDay(new Date(Date.now() + days * 86_400_000))
}

/** HH:MM in Shanghai of a UTC instant. */
export function shanghaiTime(instant: string): string {
  return dateTime(instant).slice(11)
}
