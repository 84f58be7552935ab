// The catalogue's six services, loaded once and named in the page's language.
import { computed } from 'vue'
import { useI18n } from 'vue-i18n'
import { defineStore } from 'pinia'
import { api, unwrap } from '@/api/client'
import type { components } from '@/api/schema'

export type CatalogueEntry = components['schemas']['CatalogueEntry']
export type ServiceCode = components['schemas']['Service']

const useCatalogueStore = defineStore('app-catalogue', {
  state: () => ({ entries: [] as CatalogueEntry[], loading: null as Promise<void> | null }),
  actions: {
    load(): Promise<void> {
      if (this.entries.length > 0) return Promise.resolve()
      if (!this.loading) {
        this.loading = (async () => {
          try {
            this.entries = unwrap(await api.GET('/api/v1/catalogue', {}))
          } finally {
            this.loading = null
          }
        })()
      }
      return this.loading
    },
  },
})

export function useServices() {
  const store = useCatalogueStore()
  const { locale } = useI18n()
  void store.load().catch(() => undefined)
  const en = computed(() => locale.value === 'en')
  return {
    entries: computed(() => store.entries),
    load: () => store.load(),
    entry: (code: string | null | undefined) => store.entries.find((entry) => entry.code === code),
    name(code: string | null | undefined): string {
      const entry = store.entries.find((candidate) => candidate.code === code)
      if (!entry) return code ?? ''
      return en.value ? entry.name_en : entry.name_zh
    },
  }
}

/** Services that are interviewed before hiring: live-in and long care. */
export const INTERVIEWED: ServiceCode[] = ['nanny', 'maternity_nurse', 'infant_carer']

/** Today's date in Asia/Shanghai, plus `days`, as YYYY-MM-DD. */
export function shanghaiDate(days = 0): string {
  const now = new Date(Date.now() + 8 * 3600_000 + days * 86_400_000)
  return now.toISOString().slice(0, 10)
}

/** HH:MM in Shanghai of a UTC instant. */
export function shanghaiTime(instant: string): string {
  return new Date(new Date(instant).getTime() + 8 * 3600_000).toISOString().slice(11, 16)
}
